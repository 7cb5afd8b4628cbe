// A Group is one named keyspace with its own loader and byte budget. This file is the caller's side,
// in call order: get → lookupCaches → loadOnce → fetchFromOwner (another peer owns the key) or
// loadHere (this one does, or no holder answered) → loadFromOrigin → keep; then set and remove.
// A group's answers to other peers are in owner.ts, its copies on replicas in replication.ts.
// Longer than the other files (about 520 lines) because it is a group's whole public surface: the
// get path in call order (the part to read, lines 120-357), then set, getEntry, update, remove, on,
// snapshots, clear, stats and close, each a few lines handing over to its own room (replication,
// atomic, events, snapshot, handoff, deadline; options in group-settings).
import { type Entry, entrySize } from './cache.js'
import { withinDeadline } from './deadline.js'
import { absentEntry, decodeEntry, encodeValue, ownBytes } from './codec.js'
import {
  ClosedError,
  ConflictError,
  InvalidOptionError,
  InvalidValueError,
  LoadError,
  LoadTimeoutError,
  PeerUnavailableError,
} from './errors.js'
import { type CallState, Flight } from './flight.js'
import { Hotness } from './hotness.js'
import { LoadLimiter } from './overload.js'
import type { Membership } from './membership.js'
import type {
  GetOptions,
  GroupCounters,
  GroupOptions,
  GroupStats,
  LoadContext,
  Loaded,
  RemoveResult,
  RestoreResult,
  SetOptions,
  SetResult,
  SnapshotOptions,
  SnapshotResult,
  UpdateOptions,
  VersionedValue,
} from './options.js'
import { zeroCounters } from './options.js'
import { expiry, OwnerSide } from './owner.js'
import type { WireEntry } from './protocol.js'
import { type EntrySource, type HandOffBudget, handBack, handOff } from './handoff.js'
import { type GroupSettings, groupSettings, noLoader } from './group-settings.js'
import { Replication } from './replication.js'
import { restoreSnapshot, type SnapshotTarget, writeSnapshot } from './snapshot.js'
import { Store } from './store.js'
import { type UpdateTarget, Updates, writeCondition } from './atomic.js'
import { type ChangeListener, ChangeEvents } from './events.js'
import { loadChannel } from './tracing.js'
import { checkKey, nonNegative } from './validate.js'

export type { GetOptions, GroupOptions, GroupStats, LoadContext, Loaded, RemoveResult, SetOptions, SetResult } from './options.js'

/** What answered a missed get, noted on its flight: the counter it adds to. */
type MissSource = 'peerGets' | 'replicaGets' | 'loadGets'

export class Group<T = Buffer> {
  readonly name: string
  /** @internal What the server calls for requests from other peers. */
  readonly ownerSide: OwnerSide<T>
  readonly #membership: Membership
  readonly #s: GroupSettings<T>
  readonly #store: Store<T>
  readonly #replication: Replication<T>
  readonly #hotness = new Hotness()
  /** Origin loads here, for our own gets and for peers' requests. */
  readonly #loads = new Flight<Entry<T>, MissSource>()
  /** Fetches from owners. Kept apart from #loads: a peer's request must never join a fetch (a forwarding loop). */
  readonly #fetches = new Flight<Entry<T>, MissSource>()
  readonly #counters: GroupCounters = zeroCounters()
  /** Origin loads started for other peers' requests: bounded, so a burst of batches cannot flood the origin. */
  readonly #peerLoads: LoadLimiter
  readonly #updates = new Updates<T>()
  readonly #updateTarget: UpdateTarget<T>
  readonly #events: ChangeEvents

  /** Groups are made by `peer.group()`, not by this constructor. */
  constructor(name: string, options: GroupOptions<T>, membership: Membership) {
    const settings = groupSettings(name, options)
    this.#s = settings
    this.name = name
    this.#membership = membership
    this.#events = new ChangeEvents(name, membership.self, settings.maxQueuedEvents, this.#counters)
    this.#store = new Store<T>(settings.mainBytes, settings.hotBytes, settings.graceMs, (key, version) =>
      this.#events.evicted(key, version),
    )
    this.#peerLoads = new LoadLimiter(name, settings.maxPeerLoads, settings.maxQueuedPeerLoads)
    this.#replication = new Replication<T>({
      group: name,
      membership,
      store: this.#store,
      codec: this.#s.codec,
      replicas: settings.replicas,
      dropHere: (key, before, note) => this.ownerSide.drop(key, before, note),
      clearHere: (epoch) => this.ownerSide.clear(epoch),
      storeHere: (key, bytes, ttlMs, absent, condition, note) => this.ownerSide.storeAsOwner(key, bytes, ttlMs, absent, condition, note),
      onReplicaFill: () => this.#counters.replicaFills++,
    })
    this.ownerSide = new OwnerSide<T>({
      group: name,
      maxValueBytes: settings.mainBytes,
      store: this.#store,
      codec: this.#s.codec,
      replication: this.#replication,
      counters: this.#counters,
      ttlMs: this.#s.ttlMs,
      absentTtlMs: settings.absentTtlMs,
      loads: this.#loads,
      fetches: this.#fetches,
      loadHere: (key, signal, forPeer) => this.#loadHere(key, signal, forPeer),
      checkKey: (key) => this.#checkKey(key),
      holds: (key, extra) => membership.holds(key, settings.replicas + extra),
      limiter: this.#peerLoads,
      events: this.#events,
    })
    const [getEntry, set] = [this.getEntry.bind(this), this.set.bind(this)]
    this.#updateTarget = { name, getEntry, set, counters: this.#counters }
  }

  /** The value for `key`: from a cache, the key's owner or a replica, or the origin. */
  get(key: string, options?: GetOptions): Promise<T> {
    const value = this.#lookupCaches(key)
    if (value !== MISS) return Promise.resolve(value)
    return this.#loadOnce(key, options?.signal)
  }

  /**
   * The main cache (keys owned or replicated here), then the hot cache (copies of others' hot keys).
   * A hit needs no validation (only valid keys are ever stored), no hashing and no I/O. With
   * staleWhileRevalidateMs an expired entry still within its grace is returned while one refresh
   * runs in the background.
   */
  #lookupCaches(key: string): T | typeof MISS {
    let cache = this.#store.main
    let slot = cache.find(key)
    if (slot < 0) {
      cache = this.#store.hot
      slot = cache.find(key)
      if (slot < 0) return MISS
    }
    const expiresAt = cache.expiresAtOf(slot)
    if (this.#s.graceMs > 0 && expiresAt !== 0 && expiresAt <= Date.now()) {
      // Kept past its expiry only for staleIfErrorMs: not a hit; a failed reload may still fall back to it.
      if (Date.now() - expiresAt > this.#s.staleMs) return MISS
      this.#counters.gets++
      this.#counters.staleHits++
      const value = cache.valueAt(slot)
      // A failed refresh keeps the stale value until its grace ends; the next get tries again.
      this.#loadOnce(key, undefined, false).catch(() => {})
      return value
    }
    this.#counters.gets++
    if (cache === this.#store.main) this.#counters.mainHits++
    else this.#counters.hotHits++
    return cache.valueAt(slot)
  }

  /**
   * A miss: one flight per key in this process, at the owner's origin or from the owner. A counted
   * get (not a background refresh) is counted once by what answered its flight, which the flight notes.
   */
  async #loadOnce(key: string, signal: AbortSignal | undefined, counted = true): Promise<T> {
    this.#checkKey(key)
    if (counted) this.#counters.gets++
    try {
      await this.#membership.untilUsable()
      const holders = this.#replication.holders(key)
      const mine = holders[0] === this.#membership.self || holders.length === 0
      const flights = mine ? this.#loads : this.#fetches
      if (counted && flights.has(key)) this.#counters.dedupedGets++
      const pending = mine ? this.#loadHere(key, signal) : this.#fetchOnce(holders, key, signal)
      const flight = flights.current(key) // the call this get started or joined
      const entry = await pending
      if (counted) this.#counters[flight?.note ?? 'loadGets']++
      return entry.value
    } catch (err) {
      const fallback = this.#staleIfError(key, err)
      if (fallback !== undefined) return fallback.value
      if (counted) this.#counters.failedGets++
      throw err
    }
  }

  /** The expired value still held for `key`, when its reload failed within staleIfErrorMs of its expiry. */
  #staleIfError(key: string, err: unknown): Entry<T> | undefined {
    if (this.#s.staleIfErrorMs === 0 || !(err instanceof LoadError)) return undefined
    const held = this.#store.main.get(key) ?? this.#store.hot.get(key)
    if (held === undefined || !isExpired(held) || Date.now() - held.expiresAt > this.#s.staleIfErrorMs) return undefined
    this.#counters.staleHits++
    this.#counters.staleIfErrorHits++
    return held
  }

  #fetchOnce(holders: string[], key: string, signal: AbortSignal | undefined): Promise<Entry<T>> {
    if (this.#fetches.has(key)) this.#counters.dedupedLoads++
    return this.#fetches.run(key, (call) => this.#fetchFromOwner(holders, key, call), signal)
  }

  /** Asks the owner, then each replica; when none answers, loads here: a get never fails because a peer did. */
  async #fetchFromOwner(holders: string[], key: string, call: CallState<MissSource>): Promise<Entry<T>> {
    const { self, transport } = this.#membership
    const first = holders.find((p) => p !== self)
    for (const peer of holders) {
      if (peer === self) continue
      let fetched: WireEntry
      try {
        fetched = await transport.get(peer, this.name, key)
      } catch (err) {
        if (call.aborted) throw err
        if (!(err instanceof PeerUnavailableError)) {
          this.#membership.peerAnswered(peer) // the origin failed there: the peer itself is fine
          throw err
        }
        this.#counters.peerErrors++
        if (err.reason === 'unauthorized') this.#counters.authErrors++
        this.#membership.peerFailed(peer, err)
        continue
      }
      this.#membership.peerAnswered(peer)
      this.#counters.peerLoads++
      call.note = peer === first ? 'peerGets' : 'replicaGets'
      return this.#keepFetched(holders, key, fetched, call)
    }
    // A group without a loader has nothing to load: only the key's holders know it, and none answered.
    // Absent for this caller, kept nowhere (else the key would read absent here after they are back).
    if (this.#s.load === noLoader && !holders.includes(self)) return absentEntry<T>(0, 0)
    this.#counters.localLoads++
    const pending = this.#loadHere(key, call.signal)
    const load = this.#loads.current(key)
    const entry = await pending
    call.note = load?.note
    return entry
  }

  /**
   * A fetched value is kept in the main cache if this process replicates the key, as a hot copy if
   * the key is hot here (or a copy is held already, maybe stale: it is kept up to date), else not at
   * all. Only a value that is kept needs its own memory; one just handed back stays a view of the answer.
   */
  #keepFetched(holders: string[], key: string, fetched: WireEntry, call: CallState): Entry<T> {
    let where: 'main' | 'hot' | undefined
    if (call.forgotten) where = undefined
    else if (holders.includes(this.#membership.self)) where = 'main'
    else if (this.#countFetch(key) >= this.#s.hotThreshold || this.#store.hot.get(key) !== undefined) where = 'hot'
    const bytes = where ? ownBytes(fetched.bytes) : fetched.bytes
    const entry = decodeEntry(this.#s.codec, this.name, key, { ...fetched, bytes })
    if (where) this.#store.put(key, entry, where)
    return entry
  }

  /** Counts one fetch of `key` from its owner; returns its recent fetches (0 with no hot cache: nothing to count for). */
  #countFetch(key: string): number {
    return this.#store.hot.maxBytes > 0 ? this.#hotness.add(key) : 0
  }

  /** One load of `key` in this process (a replica's copy, else the origin), shared by everyone who asks meanwhile. */
  #loadHere(key: string, signal: AbortSignal | undefined, forPeer = false): Promise<Entry<T>> {
    if (this.#loads.has(key)) this.#counters.dedupedLoads++
    // A load started for a peer waits for room among maxPeerLoads (owner.ts refused it if none was left).
    return this.#loads.run(
      key,
      forPeer ? (call) => this.#peerLoads.run(() => this.#copyOrLoad(key, call)) : (call) => this.#copyOrLoad(key, call),
      signal,
    )
  }

  async #copyOrLoad(key: string, call: CallState<MissSource>): Promise<Entry<T>> {
    const copy = await this.#replication.copyFromReplica(key, call)
    if (copy === undefined) return this.#loadFromOrigin(key, call)
    call.note = 'replicaGets'
    return copy
  }

  async #loadFromOrigin(key: string, call: CallState<MissSource>): Promise<Entry<T>> {
    this.#counters.loads++
    // The version is taken before the origin is read: a set or remove that lands during the load
    // gets a newer one, so this result can never overwrite it anywhere (owner, replica, hot copy).
    const version = this.#store.nextVersion()
    const ctx: LoadContext = {
      group: this.name,
      get signal() {
        return call.signal
      },
      ttlMs: this.#s.ttlMs || undefined,
    }
    const presetTtlMs = ctx.ttlMs
    // Traced only when a tracer listens: the load path then pays one boolean check.
    const loading = loadChannel.hasSubscribers
      ? loadChannel.tracePromise(async () => this.#s.load(key, ctx), { self: this.#membership.self, group: this.name, key })
      : Promise.resolve().then(() => this.#s.load(key, ctx)) // a synchronous throw becomes a rejection
    let value: Loaded<T> | undefined
    try {
      value = await withinDeadline(loading, this.#s.loadTimeoutMs, call.signal, () => {
        this.#counters.loadTimeouts++
        return new LoadTimeoutError(this.name, key, `the origin did not answer within loadTimeoutMs (${this.#s.loadTimeoutMs} ms)`)
      })
    } catch (err) {
      if (call.aborted) throw call.reason
      if (err instanceof LoadTimeoutError) {
        // The flight ends now and the loader is told (ctx.signal aborts); a late value from a loader
        // that goes on anyway is still worth keeping if nothing newer came meanwhile.
        call.abort(err)
        loading.then((late) => this.#entryOf(key, call, late, version, ctx, presetTtlMs)).catch(() => {})
        throw err
      }
      this.#counters.loadErrors++
      throw new LoadError(this.name, key, (err as Error)?.message ?? String(err), { cause: err })
    }
    return this.#entryOf(key, call, value, version, ctx, presetTtlMs)
  }

  /** The entry for what the loader gave (a value, or undefined: absent), kept in the caches. */
  #entryOf(
    key: string,
    call: CallState<MissSource>,
    value: Loaded<T> | undefined,
    version: number,
    ctx: LoadContext,
    presetTtlMs: number | undefined,
  ): Entry<T> {
    if (value === undefined && this.#s.absentTtlMs > 0) {
      // The origin has nothing for the key: that is cached too, for absentTtlMs unless the loader chose a ttl.
      const ttlMs = ctx.ttlMs === presetTtlMs ? this.#s.absentTtlMs : ctx.ttlMs
      this.#counters.absentLoads++
      return this.#keepLoaded(key, call, absentEntry<T>(expiry(ttlMs), version))
    }
    let bytes: Uint8Array
    try {
      bytes = encodeValue(this.#s.codec, this.name, key, value as T, 'load')
    } catch (err) {
      this.#counters.loadErrors++
      throw err
    }
    const own = ownBytes(bytes)
    // A bytes group hands back the stored Buffer itself; other codecs decode once, here.
    const decoded = own === bytes ? (value as T) : this.#s.codec.decode(own)
    return this.#keepLoaded(key, call, { value: decoded, bytes: own, expiresAt: expiry(ctx.ttlMs), version })
  }

  #keepLoaded(key: string, call: CallState<MissSource>, entry: Entry<T>): Entry<T> {
    call.note = 'loadGets'
    if (entrySize(key, entry.bytes) > this.ownerSide.maxValueBytes) this.#tooLarge(key, entry.bytes.byteLength)
    else if (!call.forgotten) void this.#replication.keep(key, entry) // replica copies never slow the get that filled
    return entry
  }

  /**
   * Stores `value` at the key's owner (which copies it to its replicas) and drops older copies on
   * every other peer. Resolves when the owner and its replicas have it and every other peer has
   * dropped its older copy or could not be reached (named in `unreachable`); rejects with
   * PeerUnavailableError when neither the owner nor a replica could be reached (then nothing changed).
   * With absentTtlMs, `undefined` stores an absent value (kept for absentTtlMs unless `ttlMs` is given).
   * With `ifVersion` or `ifAbsent`, a compare-and-set: rejects with ConflictError (nothing changed)
   * unless the owner holds that version (or none); README, "Events and atomic updates".
   */
  async set(key: string, value: T, options?: SetOptions): Promise<SetResult> {
    this.#checkKey(key)
    const ttlMs = options?.ttlMs === undefined ? undefined : nonNegative('ttlMs', options.ttlMs)
    const condition = writeCondition(this.name, key, options)
    const absent = value === undefined && this.#s.absentTtlMs > 0
    const bytes = absent ? Buffer.alloc(0) : ownBytes(encodeValue(this.#s.codec, this.name, key, value, 'set'))
    const maxValueBytes = this.ownerSide.maxValueBytes
    if (entrySize(key, bytes) > maxValueBytes) {
      const reason = `the value (${bytes.byteLength} bytes) is larger than the group can cache (${maxValueBytes} bytes with the key and bookkeeping)`
      throw new InvalidValueError(this.name, key, reason)
    }
    await this.#membership.untilUsable()
    this.#counters.sets++
    try {
      return await this.#replication.writeEverywhere(key, bytes, ttlMs, absent, condition)
    } catch (err) {
      if (err instanceof ConflictError) this.#counters.conflicts++
      throw err
    }
  }

  /**
   * The key's value with its owner's version and expiry, for `set(..., { ifVersion })`; undefined when
   * it has none (an absent value). Read from the owner (loading there on a miss), not from copies here.
   */
  async getEntry(key: string): Promise<VersionedValue<T> | undefined> {
    this.#checkKey(key)
    await this.#membership.untilUsable()
    const holders = this.#replication.holders(key)
    const mine = holders.length === 0 || holders[0] === this.#membership.self
    const held = mine ? this.#store.fresh(key) : undefined
    const entry = held ?? (await (mine ? this.#loadHere(key, undefined) : this.#fetchOnce(holders, key, undefined)))
    return entry.absent ? undefined : { value: entry.value, version: entry.version, expiresAt: entry.expiresAt }
  }

  /**
   * Read-modify-write: `fn(current value or undefined)`, written only if nobody wrote the key
   * meanwhile (ifVersion / ifAbsent), else read again and retried up to `retries` times. Resolves with
   * the value written. One key only: there are no multi-key transactions.
   */
  async update(key: string, fn: (value: T | undefined) => T | Promise<T>, options?: UpdateOptions): Promise<T> {
    this.#checkKey(key)
    return this.#updates.run(this.#updateTarget, key, fn, options)
  }

  /**
   * Deletes `key` everywhere: at its owner first, then every copy on every other peer (in parallel,
   * bounded). Resolves when every peer answered or failed, naming those that could not be reached.
   */
  async remove(key: string): Promise<RemoveResult> {
    this.#checkKey(key)
    await this.#membership.untilUsable()
    this.#counters.removes++
    return this.#replication.removeEverywhere(key)
  }

  /**
   * Change events: `listener({ group, key, kind, version, origin, expiresAt })` for every set, remove
   * and expiry of the group's keys made anywhere in the cluster, and this process's evictions; per key
   * in version order, at most once, through a bounded queue (README, "Change events"). Returns the
   * function that unsubscribes.
   */
  on(event: 'change', listener: ChangeListener): () => void {
    if (event !== 'change') throw new InvalidOptionError('event', `groups emit 'change' only, not ${JSON.stringify(event)}`)
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', 'must be a function')
    return this.#events.subscribe(listener)
  }

  /**
   * Writes the group's fresh entries, with their versions and expiry, to `writable` (a file, an
   * upload stream, a socket) in the snapshot format (README, "Snapshots"); ends it unless `end: false`.
   */
  snapshot(writable: NodeJS.WritableStream, options?: SnapshotOptions): Promise<SnapshotResult> {
    return writeSnapshot(this.#snapshotTarget(), writable, options)
  }

  /**
   * Reads a snapshot of this group from `readable` (consumed and closed): keeps the keys this
   * process owns or replicates under the current ring, others as hot copies while the hot cache has
   * room, never an entry older than the one held. Damage is counted in the result, and what came
   * before it is kept; rejects (with SnapshotError, nothing restored) only when the header is unreadable.
   */
  restore(readable: AsyncIterable<Uint8Array>): Promise<RestoreResult> {
    if (this.#membership.closed) return Promise.reject(new ClosedError())
    return restoreSnapshot(this.#snapshotTarget(), readable)
  }

  #snapshotTarget(): SnapshotTarget<T> {
    return {
      group: this.name,
      self: this.#membership.self,
      store: this.#store,
      codec: this.#s.codec,
      maxKeyBytes: this.#s.maxKeyBytes,
      keepsAbsent: this.#s.absentTtlMs > 0,
      holders: (key) => this.#replication.holders(key),
      checkKey: (key) => this.#checkKey(key),
    }
  }

  /**
   * Drops every entry of the group (main, hot and replica copies) on every member, in parallel,
   * bounded. Ordered by the version clock: each member refuses versions up to the clear's epoch
   * from then on (no value set before it comes back from a write still in transit), and its clock
   * moves past the epoch (a value set after the clear resolved is newer, so it stays). Loads under
   * way are cached nowhere. Resolves with the members that cleared and those that could not be
   * reached (they keep their entries until they expire or are evicted).
   */
  async clear(): Promise<RemoveResult> {
    await this.#membership.untilUsable()
    this.#counters.clears++
    return this.#replication.clearEverywhere(this.#store.nextVersion())
  }

  stats(): GroupStats {
    const { running, queued } = this.#peerLoads.counts
    const inFlight = this.#loads.size + this.#fetches.size
    return { group: this.name, ...this.#counters, inFlight, peerLoadsRunning: running, peerLoadsQueued: queued, ...this.#store.stats() }
  }

  /** @internal On a graceful close, before leaving: copies the entries this process holds to their holders-to-be. */
  handOff(holdersAfter: (key: string, count: number) => string[], budget: HandOffBudget): Promise<void> {
    return handOff({ ...this.#entries(), holdersAfter }, budget)
  }

  /** @internal `peer` is up again after it was down: copies to it the entries it should hold that this process is first to hold. */
  handBack(peer: string, budget: HandOffBudget): Promise<void> {
    return handBack(this.#entries(), peer, budget)
  }

  #entries(): EntrySource<T> {
    return { group: this.name, store: this.#store, membership: this.#membership, replicas: this.#s.replicas }
  }

  /**
   * @internal On close: loads and fetches still under way are told to stop (their ctx.signal aborts),
   * and copies waiting to be retried are dropped. Results that arrive later are cached nowhere.
   */
  close(reason: unknown): void {
    this.#loads.abortAll(reason)
    this.#fetches.abortAll(reason)
    this.#replication.close()
    this.#events.close()
  }

  /** A value larger than the group's budget is handed back but not cached: counted, and said once per group. */
  #tooLarge(key: string, bytes: number): void {
    if (this.#counters.tooLarge++ > 0) return
    process.emitWarning(
      `peercache: group "${this.name}": the loader gave key ${JSON.stringify(key.slice(0, 80))} a value of ${bytes} bytes, more than the group can cache (${this.ownerSide.maxValueBytes} bytes with key and bookkeeping): such values are loaded again on every get (stats().tooLarge counts them)`,
      { code: 'PEERCACHE_VALUE_TOO_LARGE' },
    )
  }

  #checkKey(key: unknown): asserts key is string {
    checkKey(this.name, key, this.#s.maxKeyBytes)
  }
}

/** What the caches answer for a key they do not hold (a held value may be undefined: an absent one). */
const MISS: unique symbol = Symbol('miss')

/** Past its expiry (an entry kept for the stale grace). */
function isExpired(entry: Entry<unknown>): boolean {
  return entry.expiresAt !== 0 && entry.expiresAt <= Date.now()
}
