// Lease locks, the owner's side: one table per process holds, for each lock name, the lease granted
// (who, which fencing token, until when) and the callers waiting for it, first come first served.
// A grant is recorded on the name's replicas before the caller hears of it, so that the next owner
// (one of them) knows the live lease and the last token if this process dies. The same table keeps
// the records this process gets as a replica, and checks them: a record whose token is lower than
// one it knows is refused with what it knows, so an owner that lost its memory (a restart) learns
// the lease and the token from its replicas before it grants anything.
// Over 300 lines: grant, wait, release, expiry and the replicas' records are one table's rules, and
// the guarantee (no double grant when only the owner dies) holds only when they are read together.
import { LRUCache } from 'lru-cache'
import { ClosedError, InvalidLockError, LockError } from './errors.js'
import { MAX_KEY_BYTES } from './protocol.js'

/** Longest lease, in ms (a day): a lock is for coordinating work, not for holding a resource for good. */
export const MAX_LOCK_TTL_MS = 86_400_000

/** A lock name is a non-empty string of at most MAX_KEY_BYTES bytes of UTF-8, as keys are. */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new InvalidLockError(name, 'a lock name is a non-empty string')
  if (Buffer.byteLength(name) > MAX_KEY_BYTES) throw new InvalidLockError(name, `lock names are at most ${MAX_KEY_BYTES} bytes of UTF-8`)
}

/** A lease as the wire carries it: its remaining time, not an instant of one process's clock. */
export interface LeaseRecord {
  id: string
  token: number
  /** ms left when it was sent. */
  ttlMs: number
}

/**
 * What an owner records on the replicas of a name: the live lease (or none), the last token granted,
 * and the last token whose lease the owner knows ended (released or expired; 0: none), so that a
 * grant can carry the end of the lease before it in the same record.
 */
export interface LockRecord {
  holder: LeaseRecord | null
  lastToken: number
  ended: number
}

/** What a waiter is given: its fencing token and the ms its lease has left at the owner. */
export interface Grant {
  token: number
  ttlMs: number
}

/** What `release` says: released, or why not (README, "Locks"). */
/** {@link LockTable.stats}. */
export interface LockTableStats {
  /** Live leases on names this process owns. */
  held: number
  /** Callers waiting here for a lease. */
  waiting: number
  /** Leases granted here (as the names' owner) since start. */
  grants: number
  /** Leases their holders released here. */
  releases: number
  /** Leases that ran out here before a release. */
  expiries: number
}

export type ReleaseResult = { released: true } | { released: false; reason: 'expired' | 'unknown' }

/** How the table reaches the name's other holders (lib/lock-service.ts wires it to the membership). */
export interface LockReplicator {
  /** Whether this process owns `name` now (only the owner grants). */
  isOwner(name: string): boolean
  /**
   * Records `record` on every replica of `name`. Resolves undefined once all acknowledged, or with
   * the newest record one of them knew instead (a later token, or another live lease). Rejects when a
   * replica could not be reached: nothing is granted then.
   */
  record(name: string, record: LockRecord): Promise<LockRecord | undefined>
}

export interface LockTableOptions {
  replicator: LockReplicator
  /** Most callers waiting for one name; past it, LockError 'queue-full'. */
  maxWaiters: number
  /** Wait before trying again to record a grant that a replica did not take, in ms. */
  retryMs?: number
  /** A record that failed (a replica unreachable), for the log. */
  onError?: (name: string, err: unknown) => void
}

interface Held {
  id: string
  token: number
  /** Date.now() ms. */
  expiresAt: number
}

interface Waiter {
  id: string
  ttlMs: number
  resolve(grant: Grant): void
  reject(err: unknown): void
  /** Cancelled (its caller aborted or hung up): it must not keep a lease. */
  gone: boolean
}

interface NameState {
  holder: Held | undefined
  lastToken: number
  /** The last token whose lease ended here (released, or expired). */
  ended: number
  waiters: Waiter[]
  /** A grant is being recorded on the replicas: nothing else is granted meanwhile. */
  granting: boolean
  /** Wakes the queue when the holder's lease ends, or to retry a record that failed. */
  timer: NodeJS.Timeout | undefined
  /** The last record of a grant failed (reported once until one succeeds). */
  failing: boolean
}

/** Idle names whose last token is remembered (their tokens stay increasing even past a restart of their replicas' memory). */
const MAX_IDLE_NAMES = 100_000

export class LockTable {
  readonly #options: Required<Omit<LockTableOptions, 'onError'>> & Pick<LockTableOptions, 'onError'>
  readonly #names = new Map<string, NameState>()
  readonly #idle = new LRUCache<string, number>({ max: MAX_IDLE_NAMES })
  /** The largest token this process granted or saw: every token it grants is larger (a Lamport clock, as versions are in store.ts). */
  #clock = 0
  #closed = false
  /** Leases granted, released by their holders, and run out, at this process as the names' owner. */
  readonly #counts = { grants: 0, releases: 0, expiries: 0 }

  constructor(options: LockTableOptions) {
    this.#options = { retryMs: 100, ...options }
  }

  /** Names with a lease or waiters, for tests and stats. */
  get size(): number {
    return this.#names.size
  }

  /**
   * Counts for metrics: leases live now on names this process owns, callers waiting here, and the
   * leases it granted, that were released, and that ran out, since it started.
   */
  stats(): LockTableStats {
    let held = 0
    let waiting = 0
    for (const [name, s] of this.#names) {
      if (live(s.holder) !== undefined && this.#options.replicator.isOwner(name)) held++
      for (const w of s.waiters) if (!w.gone) waiting++
    }
    return { held, waiting, ...this.#counts }
  }

  /** What this process knows of `name`: the live lease, if any, the last token, and how many callers wait here. */
  known(name: string): { holder: Held | undefined; lastToken: number; waiting: number } {
    const s = this.#names.get(name)
    return {
      holder: live(s?.holder),
      lastToken: s?.lastToken ?? this.#idle.get(name) ?? 0,
      waiting: s?.waiters.filter((w) => !w.gone).length ?? 0,
    }
  }

  /**
   * Waits for the lease of `name` as caller `id`, behind every waiter before it. Resolves once the
   * grant is recorded on the replicas. `signal` aborting takes this wait out of the queue (a grant
   * being recorded for it is released); a caller that gives up altogether calls `release(name, id)`.
   * A caller asking again (its owner died before it heard of its grant, or its request broke) gets
   * the lease it holds already, or keeps its place in the queue.
   */
  acquire(name: string, id: string, ttlMs: number, signal?: AbortSignal): Promise<Grant> {
    if (this.#closed) return Promise.reject(new ClosedError())
    const s = this.#state(name)
    const held = live(s.holder)
    if (held !== undefined && held.id === id) return Promise.resolve({ token: held.token, ttlMs: held.expiresAt - Date.now() })
    const again = s.waiters.findIndex((w) => w.id === id && !w.gone)
    if (again === -1 && s.waiters.length >= this.#options.maxWaiters) {
      this.#forgetIfIdle(name, s)
      return Promise.reject(new LockError(name, 'queue-full', `${s.waiters.length} callers wait already`))
    }
    return new Promise<Grant>((resolve, reject) => {
      const w: Waiter = { id, ttlMs, resolve, reject, gone: false }
      if (again === -1) s.waiters.push(w)
      else this.#leave(name, s, s.waiters.splice(again, 1, w)[0]!, 'asked again')
      signal?.addEventListener('abort', () => this.#leave(name, s, w, 'its caller left'), { once: true })
      this.#pump(name, s)
    })
  }

  /** A waiter leaves: out of the queue, its wait rejected; if its grant is being recorded, #grant releases it. */
  #leave(name: string, s: NameState, w: Waiter, why: string): void {
    if (w.gone) return
    w.gone = true
    const i = s.waiters.indexOf(w)
    if (i !== -1 && !(i === 0 && s.granting)) s.waiters.splice(i, 1)
    w.reject(new LockError(name, 'cancelled', why))
  }

  /**
   * Ends the lease `token` of `name` held by `id` (with no token: whatever `id` holds), or takes `id`
   * out of the queue. A lease whose time ran out, or that a later grant replaced, is `expired`;
   * one this process has no trace of is `unknown`.
   */
  async release(name: string, id: string, token?: number): Promise<ReleaseResult> {
    const s = this.#names.get(name)
    for (const w of s?.waiters.filter((w) => w.id === id) ?? []) this.#leave(name, s!, w, 'released while waiting')
    const held = s?.holder
    if (s !== undefined && held !== undefined && held.id === id && (token === undefined || token === held.token)) {
      if (held.expiresAt <= Date.now()) return this.#expire(name, s)
      this.#counts.releases++
      await this.#end(name, s, held)
      return { released: true }
    }
    if (token === undefined) return { released: false, reason: 'unknown' }
    const last = s?.lastToken ?? this.#idle.get(name)
    return { released: false, reason: last !== undefined && token <= last ? 'expired' : 'unknown' }
  }

  /**
   * A record from the owner of `name` (this process is a replica): taken when its token is at least
   * the last one known here and it does not replace another lease live here. Returns undefined when
   * taken, else what is known here instead.
   */
  record(name: string, record: LockRecord): LockRecord | undefined {
    const s = this.#state(name)
    this.#observe(record.lastToken)
    // A lease the owner says ended is over here too (its expiry here may lag the owner's by a transit).
    if (s.holder !== undefined && s.holder.token <= record.ended) s.holder = undefined
    if (record.ended > s.ended) s.ended = record.ended
    const mine = live(s.holder)
    // A newer token that would replace a lease still live here is refused too: its owner does not
    // know that lease (it restarted, or took over while a release or expiry was on its way).
    const replacesLive = record.holder !== null && mine !== undefined && mine.id !== record.holder.id
    if (record.lastToken < s.lastToken || replacesLive) {
      this.#forgetIfIdle(name, s)
      return { holder: mine === undefined ? null : onWire(mine), lastToken: s.lastToken, ended: s.ended }
    }
    s.lastToken = record.lastToken
    s.holder =
      record.holder === null ? undefined : { id: record.holder.id, token: record.holder.token, expiresAt: Date.now() + record.holder.ttlMs }
    // Arms the timer that ends the lease here too, should this process become the owner.
    this.#pump(name, s)
    return undefined
  }

  /** Rejects every waiter with ClosedError and stops every timer; leases are left to their replicas. */
  close(): void {
    this.#closed = true
    for (const s of this.#names.values()) {
      clearTimeout(s.timer)
      for (const w of s.waiters.splice(0)) {
        w.gone = true
        w.reject(new ClosedError())
      }
    }
    this.#names.clear()
  }

  /** Grants the lease to the first waiter when it is free, this process owns the name, and no grant is under way. */
  #pump(name: string, s: NameState): void {
    if (this.#closed || s.granting) return
    clearTimeout(s.timer)
    s.timer = undefined
    const held = live(s.holder)
    if (held !== undefined) {
      s.timer = setTimeout(() => this.#pump(name, s), held.expiresAt - Date.now() + 1)
      return
    }
    if (s.holder !== undefined) {
      // The lease ran out (a release or an end clears the holder first).
      if (this.#options.replicator.isOwner(name)) this.#counts.expiries++
      s.ended = Math.max(s.ended, s.holder.token)
    }
    s.holder = undefined
    while (s.waiters[0]?.gone) s.waiters.shift()
    const next = s.waiters[0]
    if (next === undefined) return void this.#forgetIfIdle(name, s)
    if (!this.#options.replicator.isOwner(name)) {
      // Another process owns the name now: its callers ask there (the client tries again).
      for (const w of s.waiters.splice(0)) w.reject(new LockError(name, 'misdirected', 'this peer no longer owns the lock'))
      return void this.#forgetIfIdle(name, s)
    }
    void this.#grant(name, s, next)
  }

  async #grant(name: string, s: NameState, w: Waiter): Promise<void> {
    s.granting = true
    const token = Math.max(s.lastToken + 1, this.#clock + 1, Date.now() * 1000)
    const lease: Held = { id: w.id, token, expiresAt: Date.now() + w.ttlMs }
    let newer: LockRecord | undefined
    try {
      newer = await this.#options.replicator.record(name, { holder: onWire(lease), lastToken: token, ended: s.ended })
    } catch (err) {
      if (!s.failing) this.#options.onError?.(name, err)
      s.failing = true
      s.granting = false
      // Not granted: the waiter stays first; a replica that is down is routed around once health says so.
      if (!this.#closed) s.timer = setTimeout(() => this.#pump(name, s), this.#options.retryMs)
      return
    }
    s.granting = false
    s.failing = false
    if (this.#closed) return
    if (newer !== undefined) {
      // A replica knew a later token or another live lease (this process forgot it, or missed it).
      this.#observe(newer.lastToken)
      s.lastToken = Math.max(s.lastToken, newer.lastToken)
      s.ended = Math.max(s.ended, newer.ended)
      s.holder =
        newer.holder === null ? undefined : { id: newer.holder.id, token: newer.holder.token, expiresAt: Date.now() + newer.holder.ttlMs }
      return void this.#pump(name, s)
    }
    this.#observe(token)
    s.lastToken = token
    s.holder = lease
    if (s.waiters[0] === w) s.waiters.shift()
    if (w.gone) {
      // Its caller left while the grant was being recorded: it never holds the lease.
      void this.#end(name, s, lease)
      return
    }
    this.#counts.grants++
    w.resolve({ token, ttlMs: Math.max(0, lease.expiresAt - Date.now()) })
    this.#pump(name, s)
  }

  /**
   * Ends a live lease. With a waiter, its grant's record carries the end to the replicas (one round
   * trip per hand-over); else they are told now. One that missed it only makes a next owner wait out
   * the lease's ttl.
   */
  async #end(name: string, s: NameState, held: Held): Promise<void> {
    s.holder = undefined
    s.ended = Math.max(s.ended, held.token)
    this.#pump(name, s)
    if (s.granting) return
    try {
      await this.#options.replicator.record(name, { holder: null, lastToken: s.lastToken, ended: s.ended })
    } catch (err) {
      this.#options.onError?.(name, err)
    }
  }

  #expire(name: string, s: NameState): ReleaseResult {
    if (s.holder !== undefined) this.#counts.expiries++
    s.ended = Math.max(s.ended, s.holder?.token ?? 0)
    s.holder = undefined
    this.#pump(name, s)
    return { released: false, reason: 'expired' }
  }

  #state(name: string): NameState {
    let s = this.#names.get(name)
    if (s === undefined) {
      const last = this.#idle.get(name) ?? 0
      s = { holder: undefined, lastToken: last, ended: last, waiters: [], granting: false, timer: undefined, failing: false }
      this.#idle.delete(name)
      this.#names.set(name, s)
    }
    return s
  }

  /** A name with no lease, no waiter and no grant under way keeps only its last token. */
  #forgetIfIdle(name: string, s: NameState): void {
    if (s.granting || s.waiters.length > 0 || live(s.holder) !== undefined || this.#names.get(name) !== s) return
    clearTimeout(s.timer)
    this.#names.delete(name)
    if (s.lastToken > 0) this.#idle.set(name, s.lastToken)
  }

  #observe(token: number): void {
    if (token > this.#clock) this.#clock = token
  }
}

function live(held: Held | undefined): Held | undefined {
  return held !== undefined && held.expiresAt > Date.now() ? held : undefined
}

function onWire(held: Held): LeaseRecord {
  return { id: held.id, token: held.token, ttlMs: Math.max(0, held.expiresAt - Date.now()) }
}
