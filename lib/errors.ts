// Errors are named classes with stable codes (the undici convention), so callers can branch on
// `err.code` or `instanceof` without parsing messages. Every error about a key names its group and key.
//
// Every error peercache throws or rejects with is `instanceof PeercacheError`. The four input errors
// (InvalidKeyError, InvalidGroupError, InvalidOptionError, InvalidValueError) are also `instanceof
// TypeError`, as a bad argument is in Node's own APIs: a class cannot extend both, so they extend
// TypeError and carry a brand that PeercacheError's `instanceof` recognises.

import type { WriteCondition } from './protocol.js'

const brand = Symbol.for('peercache.error')

/** Base class of every error peercache throws or rejects with (see above for the input errors). */
export class PeercacheError extends Error {
  readonly code: string = 'PEERCACHE_ERR'

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }

  /** `err instanceof PeercacheError` holds for every peercache error, the TypeError-based ones included. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass (LoadError, …) inherits this method: for it, the usual prototype-chain check.
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class `instanceof` was asked about
    if (this !== PeercacheError) return Function.prototype[Symbol.hasInstance].call(this, value)
    return typeof value === 'object' && value !== null && (value as { [brand]?: true })[brand] === true
  }
}
Object.defineProperty(PeercacheError.prototype, brand, { value: true })

/** Base of the input errors: a TypeError, and a PeercacheError for `instanceof` through the brand. */
class InputError extends TypeError {
  readonly code: string = 'PEERCACHE_ERR'

  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}
Object.defineProperty(InputError.prototype, brand, { value: true })

/** A key that is not a non-empty string within the size limit. Nothing is loaded or changed. */
export class InvalidKeyError extends InputError {
  override readonly code = 'PEERCACHE_ERR_INVALID_KEY'
  readonly group: string
  readonly key: unknown

  constructor(group: string, key: unknown, reason: string) {
    super(`peercache: group "${group}": invalid key ${describeKey(key)}: ${reason}`)
    this.group = group
    this.key = key
  }
}

/** A group name that does not match `[A-Za-z0-9._-]{1,64}`, or is already taken. */
export class InvalidGroupError extends InputError {
  override readonly code = 'PEERCACHE_ERR_INVALID_GROUP'
  /** The name that was given. */
  readonly group: unknown

  constructor(group: unknown, reason: string) {
    super(`peercache: invalid group name ${JSON.stringify(String(group))}: ${reason}`)
    this.group = group
  }
}

/** Options that cannot work (a bad URL, a negative size). Thrown by constructors, synchronously. */
export class InvalidOptionError extends InputError {
  override readonly code = 'PEERCACHE_ERR_INVALID_OPTION'
  /** The option's name. */
  readonly option: string

  constructor(option: string, reason: string) {
    super(`peercache: option ${option}: ${reason}`)
    this.option = option
  }
}

/**
 * A value that the codec cannot carry: a bytes group's loader (or `set`) gave something other than
 * a Uint8Array, or a codec threw. The value is not cached.
 */
export class InvalidValueError extends InputError {
  override readonly code = 'PEERCACHE_ERR_INVALID_VALUE'
  readonly group: string
  readonly key: string
  /** What is wrong with the value (the message without the group and key). */
  readonly reason: string

  constructor(group: string, key: string, reason: string) {
    super(`peercache: group "${group}", key ${describeKey(key)}: ${reason}`)
    this.group = group
    this.key = key
    this.reason = reason
  }
}

/**
 * The origin failed: the loader threw or rejected, here or at the key's owner. Every waiter of that
 * flight gets this error; it is not cached, and no other peer loads the key again for it.
 */
export class LoadError extends PeercacheError {
  override readonly code: string = 'PEERCACHE_ERR_LOAD'
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
 * The origin took longer than the group's `loadTimeoutMs`: every waiter of that flight gets this
 * error and the flight ends (the load itself may still finish; its value is then cached if nothing
 * newer arrived meanwhile).
 */
export class LoadTimeoutError extends LoadError {
  override readonly code = 'PEERCACHE_ERR_LOAD_TIMEOUT'
}

/**
 * A peer could not be asked: connection refused or reset, a timeout, or an answer that was not
 * peercache's. Callers of `get` never see it (they fall back to another replica or a local load);
 * `set` and `remove` report it per peer.
 */
export class PeerUnavailableError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_PEER_UNAVAILABLE'
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
  constructor() {
    super('peercache: the peer is closed')
  }
}

/**
 * A snapshot that cannot be restored at all: its header is unreadable, of another format version or
 * of another group, or the input is not bytes. Nothing was restored. (Damage after the header is not
 * an error: `restore()` keeps what it could read and counts the rest.)
 */
export class SnapshotError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_SNAPSHOT'
  constructor(
    readonly group: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`peercache: group "${group}": cannot restore the snapshot: ${reason}`, options)
  }
}

/**
 * A conditional set (`ifVersion`, `ifAbsent`, and so `update`) found another version at the key's
 * owner: nothing was written. `currentVersion` is the owner's version then (undefined: it held none).
 */
export class ConflictError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_CONFLICT'
  constructor(
    readonly group: string,
    readonly key: string,
    readonly currentVersion: number | undefined,
    condition: WriteCondition,
  ) {
    const expected = 'ifAbsent' in condition ? 'no value' : `version ${condition.ifVersion}`
    const held = currentVersion === undefined ? 'none' : `version ${currentVersion}`
    super(`peercache: group "${group}", key ${describeKey(key)}: conflict: the set expected ${expected}, the owner holds ${held}`)
  }
}

/** What a caller's aborted signal rejects with when the signal has no reason of its own; what an aborted `peer.lock()` always rejects with (the signal's reason as its cause). */
export class AbortError extends PeercacheError {
  override readonly code = 'ABORT_ERR'
  constructor(message = 'peercache: the operation was aborted', options?: ErrorOptions) {
    super(message, options)
  }
}

/** A lock name that is not a non-empty string within MAX_KEY_BYTES, or lock options that cannot work (`peer.lock()`). Nothing is queued. */
export class InvalidLockError extends InputError {
  override readonly code = 'PEERCACHE_ERR_INVALID_LOCK'
  /** The name that was given. */
  readonly lock: unknown

  constructor(lock: unknown, reason: string) {
    super(`peercache: lock ${describeKey(lock)}: ${reason}`)
    this.lock = lock
  }
}

/**
 * A lease lock could not be had or released (README, "Locks"): `queue-full` (too many callers wait
 * for it at its owner), `unavailable` (no owner could be reached to release it). `misdirected` and
 * `cancelled` are seen between peers only: `peer.lock()` asks the new owner, and a cancelled wait
 * rejects with the caller's abort reason.
 */
export class LockError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_LOCK'
  constructor(
    readonly lock: string,
    readonly reason: 'queue-full' | 'unavailable' | 'misdirected' | 'cancelled',
    message: string,
  ) {
    super(`peercache: lock ${describeKey(lock)}: ${reason}: ${message}`)
  }
}

function describeKey(key: unknown): string {
  if (typeof key !== 'string') return `(${key === null ? 'null' : typeof key})`
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)
}
