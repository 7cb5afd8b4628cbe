// A Group is one named keyspace with its own loader and byte budget. The path of a get:
//   main cache (keys this process owns) → hot cache (copies of other owners' hot keys)
//   → one flight per key: load from the origin here if this process owns the key,
//     else fetch from the owner, and on a transport failure load here instead.
// Peer requests enter through serve(): caches, then a local load, never another peer.
import { ByteCache, type CacheStats, type Entry } from './cache.js'
import { type Codec, type CodecName, ownBytes, resolveCodec } from './codec.js'
import { ClosedError, InvalidGroupError, InvalidKeyError, InvalidOptionError, InvalidValueError, LoadError, PeerUnavailableError } from './errors.js'
import { type CallState, Flight } from './flight.js'
import { Hotness } from './hotness.js'
import type { Fetched } from './client.js'
import type { ServedGroup } from './server.js'

/** What a loader gets besides the key. */
export interface LoadContext {
  /** The group's name. */
  readonly group: string
  /** Aborted when nobody waits for this load any more (every caller aborted) or the peer closes. */
  readonly signal: AbortSignal
  /**
   * Time to live of this value in ms, starting now. Preset to the group's `ttlMs`; the loader may
   * set it per key (as lru-cache's fetchMethod does). 0 or undefined: never expires.
   */
  ttlMs: number | undefined
}

/** What a bytes group's loader may return: any Uint8Array (a Buffer is one). */
export type Loaded<T> = T extends Buffer ? Uint8Array : T

export interface GroupOptions<T = Buffer> {
  /**
   * This process's byte budget for the group: main and hot cache together, counting each entry's
   * value bytes plus its key and a fixed per-entry overhead (64 bytes). Required; > 0.
   */
  maxBytes: number
  /** The origin: called once per key per flight, here or at the key's owner. */
  load: (key: string, ctx: LoadContext) => Promise<Loaded<T>> | Loaded<T>
  /** How values become bytes: 'bytes' (default; Buffer out), 'string' (UTF-8), 'json', or { encode, decode }. */
  codec?: CodecName | Codec<T>
  /**
   * Share of `maxBytes` for the hot cache (copies of keys other peers own), from 0 (off) to 0.5.
   * Default 0.125, as groupcache (1/8 of the main cache).
   */
  hotCacheRatio?: number
  /**
   * Fetches of a key from its owner within the recent window (about 40,000 fetches) after which a
   * copy is kept in the hot cache. Default 2: a key asked for twice is hot, a one-off key is not.
   */
  hotThreshold?: number
  /** Default time to live of loaded values in ms; 0 or undefined: no expiry. The loader can override per key. */
  ttlMs?: number
  /** Longest key in UTF-8 bytes. Default 4096. */
  maxKeyBytes?: number
}

export interface GetOptions {
  /** Ends this caller's wait (rejecting with the signal's reason); the shared load goes on for others. */
  signal?: AbortSignal
}

/** The counters of a group since it was created. */
export interface GroupStats {
  group: string
  /** Calls to get(). */
  gets: number
  /** Gets answered by the main cache. */
  mainHits: number
  /** Gets answered by the hot cache. */
  hotHits: number
  /** Origin calls (loader invocations) in this process, for its own gets and for peers. */
  loads: number
  /** Gets (and peer requests) that joined a flight already under way instead of starting one. */
  dedupedLoads: number
  /** Values fetched from another peer. */
  peerLoads: number
  /** Failed attempts to fetch from a peer (then a local load answered). */
  peerErrors: number
  /** Origin loads of keys another peer owns, made here because that peer could not answer. */
  localLoads: number
  /** Requests served to other peers. */
  serverRequests: number
  /** Loader failures (each a LoadError to every waiter). */
  loadErrors: number
  /** Flights under way now. */
  inFlight: number
  main: CacheStats
  hot: CacheStats
}

/** What a group needs from its Peer: routing and the client. Parts never import the Peer itself. */
export interface GroupHost {
  /** The peer that owns `key`, or undefined when this process does. */
  ownerOf(key: string): string | undefined
  fetch(peer: string, group: string, key: string, signal: AbortSignal): Promise<Fetched>
  readonly closed: boolean
}

const GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/

export class Group<T = Buffer> implements ServedGroup {
  readonly name: string
  readonly #host: GroupHost
  readonly #load: GroupOptions<T>['load']
  readonly #codec: Codec<T>
  readonly #main: ByteCache<T>
  readonly #hot: ByteCache<T>
  readonly #hotness = new Hotness()
  readonly #hotThreshold: number
  readonly #ttlMs: number
  readonly #maxKeyBytes: number
  /** Origin loads here, for our own gets and for peers' requests. */
  readonly #loads = new Flight<Entry<T>>()
  /** Fetches from owners. Kept apart from #loads: a peer's request must never join a fetch (a forwarding loop). */
  readonly #fetches = new Flight<Entry<T>>()
  #version = 0
  readonly #stats = { gets: 0, mainHits: 0, hotHits: 0, loads: 0, dedupedLoads: 0, peerLoads: 0, peerErrors: 0, localLoads: 0, serverRequests: 0, loadErrors: 0 }

  /** @internal Groups are made by `peer.group()`. */
  constructor(name: string, options: GroupOptions<T>, host: GroupHost) {
    if (typeof name !== 'string' || !GROUP_NAME.test(name)) throw new InvalidGroupError(name, 'group names match [A-Za-z0-9._-]{1,64}')
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'group options are required: { maxBytes, load }')
    if (typeof options.load !== 'function') throw new InvalidOptionError('load', `group "${name}" needs a load function`)
    const maxBytes = positive('maxBytes', options.maxBytes)
    const ratio = options.hotCacheRatio ?? 0.125
    if (!(ratio >= 0 && ratio <= 0.5)) throw new InvalidOptionError('hotCacheRatio', `must be from 0 to 0.5, got ${ratio}`)
    this.name = name
    this.#host = host
    this.#load = options.load
    this.#codec = resolveCodec(options.codec)
    const hotBytes = Math.floor(maxBytes * ratio)
    this.#main = new ByteCache<T>(maxBytes - hotBytes)
    this.#hot = new ByteCache<T>(hotBytes)
    this.#hotThreshold = positive('hotThreshold', options.hotThreshold ?? 2)
    this.#ttlMs = options.ttlMs === undefined ? 0 : nonNegative('ttlMs', options.ttlMs)
    this.#maxKeyBytes = positive('maxKeyBytes', options.maxKeyBytes ?? 4096)
  }

  /** The value for `key`: from a cache, the key's owner, or the origin. */
  async get(key: string, options?: GetOptions): Promise<T> {
    this.#checkKey(key)
    this.#stats.gets++
    let entry = this.#main.get(key)
    if (entry !== undefined) {
      this.#stats.mainHits++
      return entry.value
    }
    entry = this.#hot.get(key)
    if (entry !== undefined) {
      this.#stats.hotHits++
      return entry.value
    }
    if (this.#host.closed) throw new ClosedError()
    const owner = this.#host.ownerOf(key)
    const signal = options?.signal
    if (owner === undefined) return (await this.#loadHere(key, true, signal)).value
    if (this.#fetches.has(key)) this.#stats.dedupedLoads++
    return (await this.#fetches.run(key, (s, call) => this.#fetchFrom(owner, key, s, call), signal)).value
  }

  /** @internal The server side: answer a peer from the caches or a local load, never another peer. */
  async serve(key: string, signal: AbortSignal): Promise<Entry> {
    this.#checkKey(key)
    this.#stats.serverRequests++
    const entry = this.#main.get(key) ?? this.#hot.get(key)
    if (entry !== undefined) return entry
    // If our ring says another peer owns the key (membership is changing), the value is kept as a copy.
    return this.#loadHere(key, this.#host.ownerOf(key) === undefined, signal)
  }

  stats(): GroupStats {
    return { group: this.name, ...this.#stats, inFlight: this.#loads.size + this.#fetches.size, main: this.#main.stats(), hot: this.#hot.stats() }
  }

  async #fetchFrom(owner: string, key: string, signal: AbortSignal, call: CallState): Promise<Entry<T>> {
    let fetched: Fetched
    try {
      fetched = await this.#host.fetch(owner, this.name, key, signal)
    } catch (err) {
      if (signal.aborted || !(err instanceof PeerUnavailableError)) throw err
      // The owner is unreachable: the get must not fail, so the origin answers here.
      this.#stats.peerErrors++
      this.#stats.localLoads++
      return this.#loadHere(key, false, signal)
    }
    this.#stats.peerLoads++
    const entry = this.#entry(key, ownBytes(fetched.bytes), fetched.expiresAt, fetched.version)
    if (!call.forgotten && this.#hotness.add(key) >= this.#hotThreshold) this.#hot.set(key, entry)
    return entry
  }

  /** One origin load of `key` in this process, shared by everyone who asks meanwhile. */
  #loadHere(key: string, owned: boolean, signal: AbortSignal | undefined): Promise<Entry<T>> {
    if (this.#loads.has(key)) this.#stats.dedupedLoads++
    return this.#loads.run(key, (s, call) => this.#originLoad(key, owned, s, call), signal)
  }

  async #originLoad(key: string, owned: boolean, signal: AbortSignal, call: CallState): Promise<Entry<T>> {
    this.#stats.loads++
    const ctx: LoadContext = { group: this.name, signal, ttlMs: this.#ttlMs || undefined }
    let value: Loaded<T>
    try {
      value = await this.#load(key, ctx)
    } catch (err) {
      if (signal.aborted) throw signal.reason
      this.#stats.loadErrors++
      throw new LoadError(this.name, key, (err as Error)?.message ?? String(err), { cause: err })
    }
    let bytes: Uint8Array
    try {
      bytes = this.#codec.encode(value as T)
    } catch (err) {
      this.#stats.loadErrors++
      throw new InvalidValueError(this.name, key, `the loader's value cannot be stored: ${(err as Error)?.message ?? String(err)}`)
    }
    const ttl = ctx.ttlMs
    const expiresAt = typeof ttl === 'number' && ttl > 0 ? Date.now() + ttl : 0
    const own = ownBytes(bytes)
    // A bytes group hands back the stored Buffer itself; other codecs decode once, here.
    const entry: Entry<T> = { value: own === bytes ? (value as T) : this.#codec.decode(own), bytes: own, expiresAt, version: this.#nextVersion() }
    if (!call.forgotten) (owned ? this.#main : this.#hot).set(key, entry)
    return entry
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

  /** Versions grow with the wall clock and within a millisecond, so a later write wins across restarts. */
  #nextVersion(): number {
    this.#version = Math.max(this.#version + 1, Date.now() * 1000)
    return this.#version
  }

  #checkKey(key: unknown): asserts key is string {
    if (typeof key !== 'string') throw new InvalidKeyError(this.name, key, 'keys are strings')
    if (key.length === 0) throw new InvalidKeyError(this.name, key, 'keys are not empty')
    // A UTF-16 code unit is at most 3 UTF-8 bytes: only long keys need measuring.
    if (key.length * 3 > this.#maxKeyBytes && Buffer.byteLength(key) > this.#maxKeyBytes) {
      throw new InvalidKeyError(this.name, key, `keys are at most ${this.#maxKeyBytes} bytes of UTF-8`)
    }
    if (!(key as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new InvalidKeyError(this.name, key, 'keys are well-formed Unicode (no lone surrogate)')
  }
}

function positive(option: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new InvalidOptionError(option, `must be a positive number, got ${String(n)}`)
  return n
}

function nonNegative(option: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidOptionError(option, `must be a number ≥ 0, got ${String(n)}`)
  return n
}
