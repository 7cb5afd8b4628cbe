// Lease locks, the caller's side (`peer.lock()`), and the wiring of this process's lock table
// (locks.ts) to the ring: a lock name is hosted by its owner on the ring, like a key, and recorded
// on the next `replicas` peers. A caller whose owner is another process waits over a long-poll
// request (lock-routes.ts): the owner answers when it grants, so waiters are served in the order they
// reached the owner, with no polling interval to add to every hand-over, and a dead owner is noticed
// when the connection breaks. The caller then asks the next owner, which knows the lease.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerClient } from './client.js'
import { LOCK_DEFAULTS } from './defaults.js'
import { AbortError, InvalidLockError, InvalidOptionError, LockError, PeerUnavailableError } from './errors.js'
import { checkName, type Grant, type LockRecord, LockTable, MAX_LOCK_TTL_MS, type ReleaseResult } from './locks.js'
import type { LockRoutes } from './lock-routes.js'
import type { Membership } from './membership.js'
import { LOCKS_OPTION_NAMES, type LockOptions, type PeerOptions } from './options.js'
import { definedOnly, integer, knownOptions } from './validate.js'

/** What `lease.release()` resolves with: released, or why not. */
export type LeaseRelease = ReleaseResult | { released: false; reason: 'released' }

/** A lease held: its fencing token, until when (this process's clock), and how to end it. */
export interface Lease {
  readonly name: string
  /** The fencing token: larger than every token granted before for this name (README, "Locks"). */
  readonly token: number
  /**
   * When the lease ends by itself, Date.now() ms, as measured here: the owner counts from its grant,
   * so it may end up to one request's transit earlier. Finish well before it, and fence your writes.
   */
  readonly expiresAt: number
  /**
   * Ends the lease. Resolves `{ released: true }`, or `{ released: false, reason }`: `expired` (its
   * time ran out first), `released` (released already), `unknown` (no holder of the name knows it).
   * Rejects with LockError `unavailable` when no owner could be reached.
   */
  release(): Promise<LeaseRelease>
}

/** What a process knows of a lock (`peer.lockState`): the live lease (its token, and when it ends, Date.now() ms), the last token, the callers waiting here. */
export interface LockState {
  holder: { token: number; expiresAt: number } | undefined
  lastToken: number
  waiting: number
}

/** Tries to reach the owner of a name before `release()` gives up (about 6 s in all: a dead owner is noticed within it). */
const RELEASE_TRIES = 10

export interface LockServiceOptions {
  membership: Membership
  client: Pick<PeerClient, 'lockCall'>
  ttlMs: number
  replicas: number
  maxWaiters: number
  onError: (name: string, err: unknown) => void
}

export class LockService {
  readonly table: LockTable
  readonly #o: LockServiceOptions

  constructor(options: LockServiceOptions) {
    this.#o = options
    const { membership, replicas } = options
    this.table = new LockTable({
      maxWaiters: options.maxWaiters,
      onError: options.onError,
      replicator: {
        isOwner: (name) => this.ownerOf(name) === membership.self,
        record: async (name, record) => {
          const others = membership.ownerAndReplicas(name, 1 + replicas).filter((p) => p !== membership.self)
          const answers = await Promise.all(others.map((p) => membership.limit(() => this.#record(p, name, record))))
          // The newest of what the replicas knew instead, if any refused.
          return answers.reduce<LockRecord | undefined>(
            (a, b) => (b !== undefined && (a === undefined || b.lastToken > a.lastToken) ? b : a),
            undefined,
          )
        },
      },
    })
  }

  /** What this process knows of `name` (peer.lockState). */
  state(name: string): LockState {
    const { holder, lastToken, waiting } = this.table.known(name)
    return { holder: holder && { token: holder.token, expiresAt: holder.expiresAt }, lastToken, waiting }
  }

  /** What the lock routes (lock-routes.ts) need; tokens further ahead of this clock than `maxTokenAheadMs` are refused. */
  routes(maxTokenAheadMs: number): LockRoutes {
    const { membership } = this.#o
    return {
      table: this.table,
      ownerOf: (name) => this.ownerOf(name),
      self: membership.self,
      check: (p) => membership.check(p),
      maxTokenAheadMs,
    }
  }

  /** The peer that hosts `name` now: its owner on the ring, routed around peers known to be down. */
  ownerOf(name: string): string {
    return this.#o.membership.ownerAndReplicas(name, 1)[0] ?? this.#o.membership.self
  }

  /** `peer.lock()`: resolves once this caller holds the lease of `name`. */
  async lock(name: string, options: LockOptions = {}): Promise<Lease> {
    checkName(name)
    if (options === null || typeof options !== 'object') throw new InvalidLockError(name, 'options must be an object')
    const ttlMs = options.ttlMs ?? this.#o.ttlMs
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LOCK_TTL_MS)
      throw new InvalidLockError(name, `ttlMs must be an integer from 1 to ${MAX_LOCK_TTL_MS}, got ${String(ttlMs)}`)
    const { signal } = options
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidLockError(name, 'signal must be an AbortSignal')
    const id = randomUUID()
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw aborted(name, signal)
      const owner = this.ownerOf(name)
      const request = new AbortController()
      const granted = this.#acquireAt(owner, name, id, ttlMs, request.signal)
      try {
        const grant = await untilAborted(granted, signal)
        return this.#lease(name, id, grant)
      } catch (err) {
        if (signal?.aborted) {
          // Whatever the owner does with this wait now, this caller never holds the lease.
          request.abort()
          void this.#cancel(owner, name, id, granted)
          throw aborted(name, signal)
        }
        if (!retryable(err)) throw err
        if (err instanceof PeerUnavailableError) this.#o.membership.peerFailed(owner, err)
        // The owner died, is leaving, or is not the owner any more: ask again, once health or the ring
        // has moved on (an abort meanwhile ends the pause, and the loop rejects at its top).
        await sleep(Math.min(25 * 2 ** Math.min(attempt, 5), 500), undefined, { signal }).catch(() => {})
      }
    }
  }

  /** Stops granting: local waiters reject with ClosedError, remote ones are told (they ask the next owner). */
  close(): void {
    this.table.close()
  }

  #acquireAt(owner: string, name: string, id: string, ttlMs: number, signal: AbortSignal): Promise<Grant> {
    if (owner === this.#o.membership.self) return this.table.acquire(name, id, ttlMs, signal)
    return this.#o.client.lockCall(owner, 'acquire', { name, id, ttlMs }, signal).then((a) => grantOf(owner, name, a))
  }

  /** A wait given up: out of the owner's queue, and a grant that raced with the abort is released. */
  async #cancel(owner: string, name: string, id: string, granted: Promise<Grant>): Promise<void> {
    granted.then(
      (g) => this.#releaseAnywhere(name, id, g.token).catch(() => {}),
      () => {},
    )
    try {
      if (owner === this.#o.membership.self) await this.table.release(name, id)
      else await this.#o.client.lockCall(owner, 'release', { name, id })
    } catch {
      // The owner is gone: its waiters went with it; the long-poll's end takes this one out anyway.
    }
  }

  #lease(name: string, id: string, grant: Grant): Lease {
    let released = false
    return {
      name,
      token: grant.token,
      expiresAt: Date.now() + grant.ttlMs,
      release: async () => {
        if (released) return { released: false, reason: 'released' }
        released = true
        return this.#releaseAnywhere(name, id, grant.token)
      },
    }
  }

  /** Releases at the current owner; an owner that died meanwhile is replaced by the next, which knows the lease. */
  async #releaseAnywhere(name: string, id: string, token: number): Promise<ReleaseResult> {
    let last: unknown
    for (let attempt = 0; attempt < RELEASE_TRIES; attempt++) {
      const owner = this.ownerOf(name)
      try {
        if (owner === this.#o.membership.self) return await this.table.release(name, id, token)
        return releaseOf(owner, await this.#o.client.lockCall(owner, 'release', { name, id, token }))
      } catch (err) {
        if (!(err instanceof PeerUnavailableError)) throw err
        last = err
        this.#o.membership.peerFailed(owner, err)
        await sleep(Math.min(50 * 2 ** attempt, 1000))
      }
    }
    throw new LockError(name, 'unavailable', `no owner could be reached to release it (${(last as Error).message})`)
  }

  async #record(peer: string, name: string, record: LockRecord): Promise<LockRecord | undefined> {
    try {
      const a = (await this.#o.client.lockCall(peer, 'record', { name, ...record })) as { conflict?: LockRecord }
      return a.conflict
    } catch (err) {
      this.#o.membership.peerFailed(peer, err)
      throw err
    }
  }
}

/** The LockService of a Peer, from its `locks` option (checked: InvalidOptionError for what cannot work). */
export function lockService(
  locks: PeerOptions['locks'],
  membership: Membership,
  client: Pick<PeerClient, 'lockCall'>,
  onError: (name: string, err: unknown) => void,
): LockService {
  if (locks !== undefined && (locks === null || typeof locks !== 'object')) throw new InvalidOptionError('locks', 'must be an object')
  knownOptions('locks', locks ?? {}, LOCKS_OPTION_NAMES)
  const o = { ...LOCK_DEFAULTS, ...definedOnly(locks ?? {}) }
  return new LockService({
    membership,
    client,
    ttlMs: integer('locks.ttlMs', o.ttlMs, 1, MAX_LOCK_TTL_MS),
    replicas: integer('locks.replicas', o.replicas, 0, 16),
    maxWaiters: integer('locks.maxWaiters', o.maxWaiters, 1),
    onError,
  })
}

function retryable(err: unknown): boolean {
  return err instanceof PeerUnavailableError || (err instanceof LockError && err.reason === 'misdirected')
}

/** What a wait whose signal aborted rejects with: a PeercacheError, whatever the signal's reason (its cause). */
function aborted(name: string, signal: AbortSignal): AbortError {
  return new AbortError(`peercache: lock ${JSON.stringify(name.slice(0, 80))}: the wait was aborted`, { cause: signal.reason })
}

/** `p`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** An owner's answer to an acquire: the grant, or the error it stands for. */
function grantOf(owner: string, name: string, a: unknown): Grant {
  const g = a as { token?: unknown; ttlMs?: unknown; error?: unknown; message?: unknown }
  if (Number.isSafeInteger(g.token) && (g.token as number) > 0 && Number.isSafeInteger(g.ttlMs))
    return { token: g.token as number, ttlMs: g.ttlMs as number }
  throw answeredError(owner, name, g)
}

function releaseOf(owner: string, a: unknown): ReleaseResult {
  const r = a as { released?: unknown; reason?: unknown; error?: unknown; message?: unknown }
  if (r.released === true) return { released: true }
  if (r.released === false && (r.reason === 'expired' || r.reason === 'unknown')) return { released: false, reason: r.reason }
  throw answeredError(owner, '', r)
}

function answeredError(owner: string, name: string, a: { error?: unknown; message?: unknown }): Error {
  const message = typeof a.message === 'string' ? a.message : 'no message'
  if (a.error === 'queue-full') return new LockError(name, 'queue-full', `at ${owner}: ${message}`)
  if (a.error === 'misdirected') return new LockError(name, 'misdirected', `at ${owner}: ${message}`)
  if (a.error === 'closing') return new PeerUnavailableError(owner, message, { reason: 'closing' })
  return new PeerUnavailableError(owner, `a lock answer that makes no sense: ${JSON.stringify(a).slice(0, 200)}`, { reason: 'bad-answer' })
}
