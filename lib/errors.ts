// Errors are named classes with stable codes (the undici convention), so callers can branch on
// `err.code` or `instanceof` without parsing messages. Every error about a key names its group and key.

/** Base class of every error peercache throws or rejects with. */
export class PeercacheError extends Error {
  readonly code: string = 'PEERCACHE_ERR'
  override name = 'PeercacheError'
}

/** A key that is not a non-empty string within the size limit. Nothing is loaded or changed. */
export class InvalidKeyError extends TypeError {
  readonly code = 'PEERCACHE_ERR_INVALID_KEY'
  override name = 'InvalidKeyError'
  constructor(
    readonly group: string,
    readonly key: unknown,
    reason: string,
  ) {
    super(`peercache: group "${group}": invalid key ${describeKey(key)}: ${reason}`)
  }
}

/** A group name that does not match `[A-Za-z0-9._-]{1,64}`, or is already taken. */
export class InvalidGroupError extends TypeError {
  readonly code = 'PEERCACHE_ERR_INVALID_GROUP'
  override name = 'InvalidGroupError'
  constructor(
    readonly group: unknown,
    reason: string,
  ) {
    super(`peercache: invalid group name ${JSON.stringify(String(group))}: ${reason}`)
  }
}

/** Options that cannot work (a bad URL, a negative size). Thrown by constructors, synchronously. */
export class InvalidOptionError extends TypeError {
  readonly code = 'PEERCACHE_ERR_INVALID_OPTION'
  override name = 'InvalidOptionError'
  constructor(
    readonly option: string,
    reason: string,
  ) {
    super(`peercache: option ${option}: ${reason}`)
  }
}

/**
 * A value that the codec cannot carry: a bytes group's loader (or `set`) gave something other than
 * a Uint8Array, or a codec threw. The value is not cached.
 */
export class InvalidValueError extends TypeError {
  readonly code = 'PEERCACHE_ERR_INVALID_VALUE'
  override name = 'InvalidValueError'
  constructor(
    readonly group: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`peercache: group "${group}", key ${describeKey(key)}: ${reason}`)
  }
}

/**
 * The origin failed: the loader threw or rejected, here or at the key's owner. Every waiter of that
 * flight gets this error; it is not cached, and no other peer loads the key again for it.
 */
export class LoadError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_LOAD'
  override name = 'LoadError'
  constructor(
    readonly group: string,
    readonly key: string,
    originMessage: string,
    options?: { cause?: unknown; peer?: string },
  ) {
    super(
      `peercache: group "${group}", key ${describeKey(key)}: load failed${options?.peer ? ` at ${options.peer}` : ''}: ${originMessage}`,
      options,
    )
    this.originMessage = originMessage
    this.peer = options?.peer
  }
  /** The loader's own error message, as the origin gave it. */
  readonly originMessage: string
  /** The peer whose loader failed, when it was not this process. */
  readonly peer: string | undefined
}

/**
 * A peer could not be asked: connection refused or reset, a timeout, or an answer that was not
 * peercache's. Callers of `get` never see it (they fall back to another replica or a local load);
 * `set` and `remove` report it per peer.
 */
export class PeerUnavailableError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_PEER_UNAVAILABLE'
  override name = 'PeerUnavailableError'
  constructor(
    readonly peer: string,
    message: string,
    options?: { cause?: unknown; reason?: string },
  ) {
    super(`peercache: peer ${peer} unavailable: ${message}`, options)
    this.reason = options?.reason
  }
  /**
   * The reason the peer gave when it did answer (e.g. `closing`, `unknown-group`); undefined when it
   * gave no answer at all (refused, reset, timed out): only that says the peer may be down.
   */
  readonly reason: string | undefined
}

/** The Peer was closed; no new get, set or remove is taken. */
export class ClosedError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_CLOSED'
  override name = 'ClosedError'
  constructor() {
    super('peercache: the peer is closed')
  }
}

/** What a caller's aborted signal rejects with when the signal has no reason of its own. */
export class AbortError extends PeercacheError {
  override readonly code = 'ABORT_ERR'
  override name = 'AbortError'
  constructor(message = 'peercache: the operation was aborted') {
    super(message)
  }
}

function describeKey(key: unknown): string {
  if (typeof key !== 'string') return `(${key === null ? 'null' : typeof key})`
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
}
