// A Group is one named keyspace with its own loader and byte budget. The path of a get:
//   main cache (keys this process owns or replicates) → hot cache (copies of others' hot keys)
//   → one flight per key: load from the origin here if this process owns the key, else fetch from
//     the owner, then its replicas, and only when none answers load here.
// Peer requests enter through serve(): caches, then a local load, never another peer.
import type { LimitFunction } from 'p-limit'
import { type Entry, entrySize } from './cache.js'
import type { Fetched, PeerTransport, PutMeta, Stored } from './client.js'
import { type Codec, ownBytes, resolveCodec } from './codec.js'
import { ClosedError, InvalidGroupError, InvalidOptionError, InvalidValueError, LoadError, PeerUnavailableError } from './errors.js'
import { type CallState, Flight } from './flight.js'
import { Hotness } from './hotness.js'
import type { GetOptions, GroupOptions, GroupStats, LoadContext, Loaded, RemoveResult, SetOptions, SetResult } from './options.js'
import type { ServedGroup } from './server.js'
import { Store } from './store.js'
import { checkKey, nonNegative, positive } from './validate.js'

export type { GetOptions, GroupOptions, GroupStats, LoadContext, Loaded, RemoveResult, SetOptions, SetResult } from './options.js'

/** What a group needs from its Peer. Parts never import the Peer itself. */
export interface GroupHost {
  readonly self: string
  /** Up to `count` peers for `key` in ring order (owner first), leaving out peers known to be down. */
  owners(key: string, count: number): string[]
  /** Every member, this one included. */
  members(): readonly string[]
  readonly transport: PeerTransport
  /** Bounds the requests that fan out (replica copies, remove broadcasts). */
  readonly limit: LimitFunction
  /** A peer failed to answer (health's passive signal), or answered. */
  peerFailed(peer: string, err: unknown): void
  peerAnswered(peer: string): void
  readonly closed: boolean
}

const GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/
/** A failed replica copy is tried again after this long, in ms, at most this many at a time. */
const COPY_RETRY_MS = 2000
const MAX_COPY_RETRIES = 10_000

export class Group<T = Buffer> implements ServedGroup {
  readonly name: string
  readonly maxValueBytes: number
  readonly #host: GroupHost
  readonly #load: GroupOptions<T>['load']
  readonly #codec: Codec<T>
  readonly #store: Store<T>
  readonly #hotness = new Hotness()
  readonly #hotThreshold: number
  readonly #replicas: number
  readonly #ttlMs: number
  readonly #staleMs: number
  readonly #maxKeyBytes: number
  /** Origin loads here, for our own gets and for peers' requests. */
  readonly #loads = new Flight<Entry<T>>()
  /** Fetches from owners. Kept apart from #loads: a peer's request must never join a fetch (a forwarding loop). */
  readonly #fetches = new Flight<Entry<T>>()
  /** Replica copies waiting to be tried again. */
  #retries = 0
  readonly #stats = {
    gets: 0,
    mainHits: 0,
    hotHits: 0,
    loads: 0,
    dedupedLoads: 0,
    peerLoads: 0,
    peerErrors: 0,
    localLoads: 0,
    serverRequests: 0,
    loadErrors: 0,
    sets: 0,
    removes: 0,
    replicaWrites: 0,
    replicaFills: 0,
    staleHits: 0,
  }

  /** @internal Groups are made by `peer.group()`. */
  constructor(name: string, options: GroupOptions<T>, host: GroupHost) {
    if (typeof name !== 'string' || !GROUP_NAME.test(name)) throw new InvalidGroupError(name, 'group names match [A-Za-z0-9._-]{1,64}')
    if (options === null || typeof options !== 'object')
      throw new InvalidOptionError('options', 'group options are required: { maxBytes, load }')
    if (typeof options.load !== 'function') throw new InvalidOptionError('load', `group "${name}" needs a load function`)
    const maxBytes = positive('maxBytes', options.maxBytes)
    const ratio = options.hotCacheRatio ?? 0.125
    if (!(ratio >= 0 && ratio <= 0.5)) throw new InvalidOptionError('hotCacheRatio', `must be from 0 to 0.5, got ${ratio}`)
    const replicas = options.replicas ?? 2
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
      throw new InvalidOptionError('replicas', `must be an integer from 1 to 5, got ${replicas}`)
    this.name = name
    this.#host = host
    this.#load = options.load
    this.#codec = resolveCodec(options.codec)
    const hotBytes = Math.floor(maxBytes * ratio)
    this.#staleMs = options.staleWhileRevalidateMs === undefined ? 0 : nonNegative('staleWhileRevalidateMs', options.staleWhileRevalidateMs)
    this.#store = new Store<T>(maxBytes - hotBytes, hotBytes, this.#staleMs)
    this.maxValueBytes = maxBytes - hotBytes
    this.#replicas = replicas
    this.#hotThreshold = positive('hotThreshold', options.hotThreshold ?? 2)
    this.#ttlMs = options.ttlMs === undefined ? 0 : nonNegative('ttlMs', options.ttlMs)
    this.#maxKeyBytes = positive('maxKeyBytes', options.maxKeyBytes ?? 4096)
  }

  /** The value for `key`: from a cache, the key's owner or a replica, or the origin. */
  get(key: string, options?: GetOptions): Promise<T> {
    // A hit needs no validation (only valid keys are ever stored), no hashing and no I/O.
    const main = this.#store.main.get(key)
    const entry = main ?? this.#store.hot.get(key)
    if (entry === undefined) return this.#miss(key, options?.signal)
    this.#stats.gets++
    if (this.#staleMs > 0 && this.#servedStale(key, entry)) this.#stats.staleHits++
    else if (main !== undefined) this.#stats.mainHits++
    else this.#stats.hotHits++
    return Promise.resolve(entry.value)
  }

  /**
   * With staleWhileRevalidateMs: true when `entry` is past its expiry (but within the grace the
   * caches keep it for); one refresh is then started in the background through the usual flights,
   * and the caller returns the entry as it is.
   */
  #servedStale(key: string, entry: Entry<T>): boolean {
    if (entry.expiresAt === 0 || entry.expiresAt > Date.now()) return false
    // A failed refresh keeps the stale value until its grace ends; the next get tries again.
    this.#miss(key, undefined, false).catch(() => {})
    return true
  }

  async #miss(key: string, signal: AbortSignal | undefined, counted = true): Promise<T> {
    this.#checkKey(key)
    if (counted) this.#stats.gets++
    if (this.#host.closed) throw new ClosedError()
    const owners = this.#host.owners(key, this.#replicas)
    if (owners[0] === this.#host.self || owners.length === 0) return (await this.#loadHere(key, signal)).value
    if (this.#fetches.has(key)) this.#stats.dedupedLoads++
    return (await this.#fetches.run(key, (call) => this.#fetch(owners, key, call), signal)).value
  }

  /**
   * Stores `value` at the key's owner (which copies it to its replicas) and drops older copies on
   * every other peer. Resolves when the owner has stored it; rejects with PeerUnavailableError
   * when neither the owner nor a replica could be reached (then nothing changed).
   */
  async set(key: string, value: T, options?: SetOptions): Promise<SetResult> {
    this.#checkKey(key)
    const ttlMs = options?.ttlMs === undefined ? undefined : nonNegative('ttlMs', options.ttlMs)
    const bytes = ownBytes(this.#encode(key, value, 'set'))
    if (entrySize(key, bytes) > this.maxValueBytes) {
      throw new InvalidValueError(
        this.name,
        key,
        `the value (${bytes.byteLength} bytes) is larger than the group can cache (${this.maxValueBytes} bytes with the key and bookkeeping)`,
      )
    }
    if (this.#host.closed) throw new ClosedError()
    this.#stats.sets++
    const owners = this.#host.owners(key, this.#replicas)
    let owner: string | undefined
    let stored: Stored | undefined
    let lastError: unknown
    const candidates = owners.length ? owners : [this.#host.self]
    for (const peer of candidates) {
      try {
        stored =
          peer === this.#host.self
            ? await this.#storeAsOwner(key, bytes, ttlMs)
            : await this.#host.transport.put(peer, this.name, key, bytes, { replica: false, ttlMs })
        owner = peer
        break
      } catch (err) {
        if (!(err instanceof PeerUnavailableError)) throw err
        this.#host.peerFailed(peer, err)
        lastError = err
      }
    }
    if (stored === undefined || owner === undefined) throw lastError
    // The owner and the replicas after it have the value; everyone else, the owners that failed
    // included (they may only be cut off), drops older copies.
    const { unreachable } = await this.#broadcastDrop(key, stored.version, new Set(candidates.slice(candidates.indexOf(owner))))
    return { owner, version: stored.version, expiresAt: stored.expiresAt, unreachable: [...stored.unreachable, ...unreachable] }
  }

  /**
   * Deletes `key` everywhere: at its owner first, then every copy on every other peer (in parallel,
   * bounded). Resolves when every peer answered or failed, naming those that could not be reached.
   */
  async remove(key: string): Promise<RemoveResult> {
    this.#checkKey(key)
    if (this.#host.closed) throw new ClosedError()
    this.#stats.removes++
    // The owner first: once it has dropped the value, no peer can fetch the old one again.
    const owner = this.#host.owners(key, 1)[0] ?? this.#host.self
    const first = await this.#dropAt(owner, key, undefined)
    // The others drop what is not newer than the owner's tombstone, so every peer refuses the same
    // versions whatever its own clock says (unknown if the owner was unreachable: then drop all).
    const rest = await this.#broadcastDrop(key, first.line === undefined ? undefined : first.line + 1, new Set([owner]))
    return { acknowledged: [...first.acknowledged, ...rest.acknowledged], unreachable: [...first.unreachable, ...rest.unreachable] }
  }

  stats(): GroupStats {
    return { group: this.name, ...this.#stats, inFlight: this.#loads.size + this.#fetches.size, ...this.#store.stats() }
  }

  /** @internal On close: loads and fetches still under way are told to stop (their ctx.signal aborts). */
  abortFlights(reason: unknown): void {
    this.#loads.abortAll(reason)
    this.#fetches.abortAll(reason)
  }

  /** @internal A peer's peek: the cached entry only. */
  peek(key: string): Entry | undefined {
    this.#checkKey(key)
    this.#stats.serverRequests++
    return this.#store.fresh(key)
  }

  /** @internal The server side of GET: answer a peer from the caches or a local load, never another peer. */
  serve(key: string, signal: () => AbortSignal): Entry | Promise<Entry> {
    this.#checkKey(key)
    this.#stats.serverRequests++
    // A stale entry (kept for staleWhileRevalidateMs) is this peer's to serve stale, not the asker's: load.
    const entry = this.#store.fresh(key)
    if (entry !== undefined) return entry
    return this.#loadHere(key, signal())
  }

  /** @internal The server side of PUT. */
  async store(key: string, body: Buffer, meta: PutMeta): Promise<Stored> {
    this.#checkKey(key)
    this.#stats.serverRequests++
    const bytes = ownBytes(body) // a request body may be a slice of a shared pool
    if (!meta.replica) return this.#storeAsOwner(key, bytes, meta.ttlMs)
    this.#stats.replicaWrites++
    this.#store.put(key, this.#entry(key, bytes, meta.expiresAt, meta.version), 'main')
    return { version: meta.version, expiresAt: meta.expiresAt, unreachable: [] }
  }

  /** @internal The server side of DELETE (and a local remove): drop copies and stop flights from caching older values. */
  drop(key: string, before?: number): number {
    this.#checkKey(key)
    this.#loads.forget(key)
    this.#fetches.forget(key)
    return this.#store.remove(key, before)
  }

  async #fetch(owners: string[], key: string, call: CallState): Promise<Entry<T>> {
    const self = this.#host.self
    const isReplica = owners.includes(self)
    for (const peer of owners) {
      if (peer === self) continue
      let fetched: Fetched
      try {
        fetched = await this.#host.transport.get(peer, this.name, key)
      } catch (err) {
        if (call.aborted) throw err
        if (!(err instanceof PeerUnavailableError)) {
          this.#host.peerAnswered(peer) // the origin failed there: the peer itself is fine
          throw err
        }
        this.#stats.peerErrors++
        this.#host.peerFailed(peer, err)
        continue // the next replica, then a local load: a get never fails because a peer did
      }
      this.#host.peerAnswered(peer)
      this.#stats.peerLoads++
      // Only a value that is kept needs its own memory; one just handed back can stay a view of the answer.
      // (a copy held here already, maybe stale, is kept up to date whatever the count says)
      const where = call.forgotten ? undefined : isReplica ? 'main' : this.#isHot(key) || this.#store.hot.get(key) ? 'hot' : undefined
      const entry = this.#entry(key, where ? ownBytes(fetched.bytes) : fetched.bytes, fetched.expiresAt, fetched.version)
      if (where) this.#store.put(key, entry, where)
      return entry
    }
    this.#stats.localLoads++
    return this.#loadHere(key, call.signal)
  }

  /** Counts a fetch of `key` and tells whether it is now hot enough for a copy here (never, with no hot cache). */
  #isHot(key: string): boolean {
    return this.#store.hot.maxBytes > 0 && this.#hotness.add(key) >= this.#hotThreshold
  }

  /** One load of `key` in this process, shared by everyone who asks meanwhile. */
  #loadHere(key: string, signal: AbortSignal | undefined): Promise<Entry<T>> {
    if (this.#loads.has(key)) this.#stats.dedupedLoads++
    return this.#loads.run(key, (call) => this.#fill(key, call), signal)
  }

  /**
   * The owner's miss: a replica may still hold the key (this process restarted, or just became the
   * owner), and a peek there costs a round trip where the origin costs a load. Only then the origin.
   */
  async #fill(key: string, call: CallState): Promise<Entry<T>> {
    const owners = this.#host.owners(key, this.#replicas)
    if (owners[0] === this.#host.self) {
      for (const peer of owners.slice(1)) {
        let fetched: Fetched | undefined
        try {
          fetched = await this.#host.transport.peek(peer, this.name, key)
        } catch (err) {
          if (call.aborted) throw err
          this.#host.peerFailed(peer, err)
          continue
        }
        this.#host.peerAnswered(peer)
        if (fetched === undefined) continue
        const entry = this.#entry(key, ownBytes(fetched.bytes), fetched.expiresAt, fetched.version)
        // Stored only if nothing newer is known here (a tombstone, a set): else the origin decides.
        if (call.forgotten || !this.#store.put(key, entry, 'main')) break
        this.#stats.replicaFills++
        return entry
      }
    }
    return this.#originLoad(key, call)
  }

  async #originLoad(key: string, call: CallState): Promise<Entry<T>> {
    this.#stats.loads++
    // The version is taken before the origin is read: a set or remove that lands during the load
    // gets a newer one, so this result can never overwrite it anywhere (owner, replica, hot copy).
    const version = this.#store.nextVersion()
    const ctx: LoadContext = {
      group: this.name,
      get signal() {
        return call.signal
      },
      ttlMs: this.#ttlMs || undefined,
    }
    let value: Loaded<T>
    try {
      value = await this.#load(key, ctx)
    } catch (err) {
      if (call.aborted) throw call.reason
      this.#stats.loadErrors++
      throw new LoadError(this.name, key, (err as Error)?.message ?? String(err), { cause: err })
    }
    let bytes: Uint8Array
    try {
      bytes = this.#encode(key, value as T, 'load')
    } catch (err) {
      this.#stats.loadErrors++
      throw err
    }
    const own = ownBytes(bytes)
    // A bytes group hands back the stored Buffer itself; other codecs decode once, here.
    const decoded = own === bytes ? (value as T) : this.#codec.decode(own)
    const entry: Entry<T> = { value: decoded, bytes: own, expiresAt: expiry(ctx.ttlMs), version }
    if (!call.forgotten) void this.#keep(key, entry) // replica copies never slow the get that filled
    return entry
  }

  /**
   * A set arriving at the owner: newer than anything loading, so those loads must not be cached.
   * Resolves once the replicas have the value too (or could not be reached within peerTimeoutMs),
   * so that no replica answers with the old value after the set resolved.
   */
  async #storeAsOwner(key: string, bytes: Buffer, ttlMs: number | undefined): Promise<Stored> {
    const entry = this.#entry(key, bytes, expiry(ttlMs ?? (this.#ttlMs || undefined)), this.#store.nextVersion())
    this.#loads.forget(key)
    this.#fetches.forget(key)
    const unreachable = await this.#keep(key, entry)
    return { version: entry.version, expiresAt: entry.expiresAt, unreachable }
  }

  /**
   * Keeps a value made here: in the main cache if this process owns or replicates the key, else as
   * a hot copy. The owner also copies it to the replicas (bounded by the fan-out limit); the promise
   * resolves with the replicas that could not be reached.
   */
  async #keep(key: string, entry: Entry<T>): Promise<string[]> {
    const owners = this.#host.owners(key, this.#replicas)
    const self = this.#host.self
    const mine = owners.length === 0 || owners.includes(self)
    if (!this.#store.put(key, entry, mine ? 'main' : 'hot') || owners[0] !== self || owners.length < 2) return []
    const failed = await Promise.all(owners.slice(1).map((peer) => this.#copy(peer, key, entry, true)))
    return failed.filter((p): p is string => p !== undefined)
  }

  /**
   * Copies an entry to a replica; resolves with the peer when it failed. A failed copy is tried once
   * more a little later (a busy peer may have missed peerTimeoutMs) if this process still owns the
   * same entry then, so that a replica is not left without the key it should take over.
   */
  async #copy(peer: string, key: string, entry: Entry<T>, retry: boolean): Promise<string | undefined> {
    const meta: PutMeta = { replica: true, version: entry.version, expiresAt: entry.expiresAt }
    try {
      await this.#host.limit(() => this.#host.transport.put(peer, this.name, key, entry.bytes, meta))
      return undefined
    } catch (err) {
      this.#host.peerFailed(peer, err)
      if (retry && this.#retries < MAX_COPY_RETRIES) {
        this.#retries++
        setTimeout(() => {
          this.#retries--
          const owners = this.#host.owners(key, this.#replicas)
          if (this.#store.main.get(key) === entry && owners[0] === this.#host.self && owners.includes(peer))
            void this.#copy(peer, key, entry, false)
        }, COPY_RETRY_MS).unref()
      }
      return peer
    }
  }

  /** Drops copies of `key` (older than `before`) on every member outside `skip`, in parallel, bounded. */
  async #broadcastDrop(key: string, before: number | undefined, skip: Set<string>): Promise<RemoveResult> {
    const peers = this.#host.members().filter((p) => !skip.has(p))
    const results = await Promise.all(peers.map((p) => this.#host.limit(() => this.#dropAt(p, key, before))))
    return { acknowledged: results.flatMap((r) => r.acknowledged), unreachable: results.flatMap((r) => r.unreachable) }
  }

  /** Drops `key` at one peer; `line` is that peer's tombstone version when it answered. */
  async #dropAt(peer: string, key: string, before: number | undefined): Promise<RemoveResult & { line?: number }> {
    if (peer === this.#host.self) return { acknowledged: [peer], unreachable: [], line: this.drop(key, before) }
    try {
      const line = await this.#host.transport.delete(peer, this.name, key, before)
      return { acknowledged: [peer], unreachable: [], line }
    } catch (err) {
      this.#host.peerFailed(peer, err)
      return { acknowledged: [], unreachable: [peer] }
    }
  }

  #encode(key: string, value: T, what: 'load' | 'set'): Uint8Array {
    try {
      return this.#codec.encode(value)
    } catch (err) {
      const whose = what === 'load' ? "the loader's value" : 'the value given to set()'
      throw new InvalidValueError(this.name, key, `${whose} cannot be stored: ${(err as Error)?.message ?? String(err)}`)
    }
  }

  #entry(key: string, bytes: Buffer, expiresAt: number, version: number): Entry<T> {
    let value: T
    try {
      value = this.#codec.decode(bytes)
    } catch (err) {
      throw new InvalidValueError(this.name, key, `the value cannot be decoded: ${(err as Error)?.message ?? String(err)}`)
    }
    return { value, bytes, expiresAt, version }
  }

  #checkKey(key: unknown): asserts key is string {
    checkKey(this.name, key, this.#maxKeyBytes)
  }
}

function expiry(ttlMs: number | undefined): number {
  return typeof ttlMs === 'number' && ttlMs > 0 ? Date.now() + ttlMs : 0
}
