// A group's answers to other peers (what server.ts calls for a request): serve a key from the caches
// or one local load, never from another peer (so two peers that disagree about an owner during a
// membership change cannot bounce a key between them); peek at the caches only; accept a set as the
// owner or a copy as a replica; drop copies.
import type { Entry } from './cache.js'
import { absentEntry, type Codec, decodeEntry, ownBytes } from './codec.js'
import { ConflictError, InvalidValueError, PeercacheError } from './errors.js'
import type { Flight } from './flight.js'
import { type LoadLimiter, OverloadedError } from './overload.js'
import type { GroupCounters } from './options.js'
import type { ChangeEvents } from './events.js'
import type { ChangeNote, PutMeta, ServedGroup, Stored, WriteCondition } from './protocol.js'
import type { Replication } from './replication.js'
import type { Store } from './store.js'

export interface OwnerSideOptions<T> {
  group: string
  maxValueBytes: number
  store: Store<T>
  codec: Codec<T>
  replication: Replication<T>
  counters: GroupCounters
  /** The group's default time to live, in ms (0: none). */
  ttlMs: number
  /** How long absent values are kept, in ms; 0: the group has none (absent values are refused). */
  absentTtlMs: number
  /** The group's flights: origin loads here, and fetches from owners. */
  loads: Flight<Entry<T>>
  fetches: Flight<Entry<T>>
  /** One load of `key` in this process (a replica's copy, else the origin), shared by everyone who asks meanwhile. */
  loadHere(key: string, signal: AbortSignal | undefined, forPeer?: boolean): Promise<Entry<T>>
  /** Throws InvalidKeyError for a key the group would refuse. */
  checkKey(key: string): void
  /** Whether this peer is the key's owner or one of its replicas (or `extra` places further): the only peers that keep a PUT. */
  holds(key: string, extra: number): boolean
  /** Bounds the origin loads started for peers. */
  limiter: LoadLimiter
  /** Where the sets and removes applied here are announced (change events). */
  events: ChangeEvents
}

/** A PUT reached a peer that would not keep the value: it is neither the key's owner nor a replica (421). */
export class MisdirectedError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_MISDIRECTED'
  override name = 'MisdirectedError'
}

export class OwnerSide<T> implements ServedGroup {
  readonly maxValueBytes: number
  readonly #o: OwnerSideOptions<T>

  constructor(options: OwnerSideOptions<T>) {
    this.#o = options
    this.maxValueBytes = options.maxValueBytes
  }

  /** A peer's peek: the fresh cached entry only. */
  peek(key: string): Entry<T> | undefined {
    this.#o.checkKey(key)
    this.#o.counters.serverRequests++
    const entry = this.#o.store.fresh(key)
    if (entry === undefined) this.#o.counters.serverMisses++
    return entry
  }

  /** A peer's get: from the caches, else a local load. */
  serve(key: string, signal: () => AbortSignal): Entry<T> | Promise<Entry<T>> {
    this.#o.checkKey(key)
    this.#o.counters.serverRequests++
    // A stale entry (kept for staleWhileRevalidateMs) is this peer's to serve stale, not the asker's: load.
    const entry = this.#o.store.fresh(key)
    if (entry !== undefined) return entry
    // A load already under way costs nothing more; a new one needs room among the loads for peers.
    if (!this.#o.loads.has(key) && this.#o.limiter.full) throw new OverloadedError(this.#o.group, 1000)
    const loading = this.#o.loadHere(key, signal(), true)
    loading.catch(() => this.#o.counters.serverErrors++)
    return loading
  }

  /** A peer's PUT: a set that this process owns, or the owner's copy for this replica. */
  async put(key: string, body: Buffer, meta: PutMeta): Promise<Stored> {
    this.#o.checkKey(key)
    this.#o.counters.serverRequests++
    // Anywhere else the value would be kept nowhere (or only as a hot copy) while the sender is told it
    // was stored. A copy may also come from a leaving owner (hand-off) to the peer that holds the key
    // once it is gone: one place further along the ring.
    if (!this.#o.holds(key, meta.replica ? 1 : 0))
      throw new MisdirectedError(`peercache: group "${this.#o.group}": this peer is neither the key's owner nor a replica: nothing stored`)
    const bytes = ownBytes(body) // a request body may be a slice of a shared pool
    const absent = meta.absent === true
    if (absent) this.#acceptsAbsent(key)
    if (!meta.replica) return this.storeAsOwner(key, bytes, meta.ttlMs, absent, meta.condition, meta.note)
    this.#o.counters.replicaWrites++
    const { group, codec, store } = this.#o
    store.put(key, decodeEntry(codec, group, key, { bytes, expiresAt: meta.expiresAt, version: meta.version, absent }), 'main')
    // A copy of a set (not of a load, nor a hand-off) is that set arriving here.
    if (meta.note?.kind === 'set') this.#o.events.note(key, 'set', meta.version, meta.note.origin, meta.expiresAt)
    return { version: meta.version, expiresAt: meta.expiresAt, unreachable: [] }
  }

  /**
   * A set arriving at the owner: newer than anything loading, so those loads must not be cached.
   * Resolves once the replicas have the value too (or could not be reached within peerTimeoutMs),
   * so that no replica answers with the old value after the set resolved. A `condition` is checked
   * against the entry held here and the new one stored in the same synchronous stretch (keep()
   * stores before its first await), so no other write of the key can come between the two.
   */
  async storeAsOwner(
    key: string,
    bytes: Buffer,
    ttlMs: number | undefined,
    absent = false,
    condition?: WriteCondition,
    note?: ChangeNote,
  ): Promise<Stored> {
    const { group, codec, store } = this.#o
    if (condition !== undefined) this.#check(key, condition)
    const expiresAt = expiry(ttlMs ?? (absent ? this.#o.absentTtlMs : this.#o.ttlMs))
    const version = store.nextVersion()
    const entry = absent ? absentEntry<T>(expiresAt, version) : decodeEntry(codec, group, key, { bytes, expiresAt, version })
    this.#forgetFlights(key)
    const kept = this.#o.replication.keep(key, entry, note)
    if (note !== undefined) this.#o.events.note(key, 'set', version, note.origin, expiresAt)
    const unreachable = await kept
    return { version: entry.version, expiresAt: entry.expiresAt, unreachable }
  }

  /** Throws ConflictError unless the fresh entry held for `key` is the one `condition` names (an absent value counts as none). */
  #check(key: string, condition: WriteCondition): void {
    const held = this.#o.store.fresh(key)
    const current = held === undefined || held.absent ? undefined : held.version
    if ('ifAbsent' in condition ? current === undefined : current === condition.ifVersion) return
    throw new ConflictError(this.#o.group, key, current, condition)
  }

  /**
   * A peer's DELETE (and a local remove): drop copies and stop flights from caching older values.
   * The drops after a set name its version (`before`); a remove's owner makes the tombstone, the
   * others are told it (`before` is one past it): each announces the same version.
   */
  drop(key: string, before?: number, note?: ChangeNote): number {
    this.#o.checkKey(key)
    this.#forgetFlights(key)
    const tombstone = this.#o.store.remove(key, before)
    if (note?.kind === 'set' && before !== undefined) this.#o.events.note(key, 'set', before, note.origin, note.expiresAt)
    else if (note?.kind === 'remove') this.#o.events.note(key, 'remove', before === undefined ? tombstone : before - 1, note.origin)
    return tombstone
  }

  /** A clear of the group (from a peer, or this process's own): drop everything, stop flights from caching. */
  clear(epoch: number): number {
    this.#o.loads.forgetAll()
    this.#o.fetches.forgetAll()
    return this.#o.store.clear(epoch)
  }

  /** An absent value for a group without absentTtlMs: a peer configured otherwise sent it. */
  #acceptsAbsent(key: string): void {
    if (this.#o.absentTtlMs === 0)
      throw new InvalidValueError(this.#o.group, key, 'an absent value, but this group has no absentTtlMs here')
  }

  /** A resync: what this process holds may have missed writes; it reloads from owners and replicas. */
  dropAll(): void {
    this.#o.loads.forgetAll()
    this.#o.fetches.forgetAll()
    this.#o.store.dropAll()
  }

  /** Flights under way for `key` began before this write: their results reach their waiters but are cached nowhere. */
  #forgetFlights(key: string): void {
    this.#o.loads.forget(key)
    this.#o.fetches.forget(key)
  }
}

/** Absolute expiry for a time to live in ms from now; 0 (never) for 0 or none. */
export function expiry(ttlMs: number | undefined): number {
  return typeof ttlMs === 'number' && ttlMs > 0 ? Date.now() + ttlMs : 0
}
