// The types a group's user writes against: its options, the loader's context, results and stats.
import type { CacheStats } from './cache.js'
import type { Codec, CodecName } from './codec.js'

/** What a loader gets besides the key. */
export interface LoadContext {
  /** The group's name. */
  readonly group: string
  /** Aborted when nobody waits for this load any more (every caller aborted) or the peer closes. */
  readonly signal: AbortSignal
  /**
   * Time to live of this value in ms, counted from the end of the load. Preset to the group's
   * `ttlMs`; the loader may set it per key (as lru-cache's fetchMethod does). 0 or undefined: never expires.
   */
  ttlMs: number | undefined
}

/** What a bytes group's loader may return: any Uint8Array (a Buffer is one). */
export type Loaded<T> = T extends Buffer ? Uint8Array : T

export interface GroupOptions<T = Buffer> {
  /**
   * This process's byte budget for the group, main and hot cache together. Each entry counts its
   * value bytes plus its key length plus 768 bytes of measured per-entry overhead (so that RSS
   * tracks the budget; small values therefore cost more than their size). Required; > 0.
   */
  maxBytes: number
  /** The origin: called at most once at a time per key in this process, normally only at the key's owner. */
  load: (key: string, ctx: LoadContext) => Promise<Loaded<T>> | Loaded<T>
  /** How values become bytes: 'bytes' (the default: Buffer out), 'string' (UTF-8), 'json', or { encode, decode }. */
  codec?: CodecName | Codec<T>
  /**
   * How many peers hold each key: the owner and the next `replicas - 1` distinct peers on the ring,
   * which take over at once when the owner dies. 1 is groupcache's behaviour (owner only). Each
   * extra replica costs main-cache room and one PUT per fill. Default 2; 1 to 5.
   */
  replicas?: number
  /**
   * Share of `maxBytes` for the hot cache (copies of keys that other peers own and this process
   * asks for often), from 0 (off) to 0.5. Default 0.125 (groupcache keeps 1/8 of the main cache's size).
   */
  hotCacheRatio?: number
  /**
   * How many fetches of a key from its owner, within the recent window (about 4,000 fetches),
   * make it hot enough to keep a copy here. Default 2: a key asked for again is hot, a one-off is not.
   */
  hotThreshold?: number
  /** Default time to live of values in ms; 0 or undefined: no expiry. The loader (`ctx.ttlMs`) and `set` can override it per key. */
  ttlMs?: number
  /**
   * For how long after its expiry a value may still be returned, in ms, while one background
   * refresh (per key and process) gets the new one: gets stay fast when a popular key expires.
   * Off (0) by default: an expired value is then never returned.
   */
  staleWhileRevalidateMs?: number
  /** Longest key, in bytes of UTF-8. Default 4096. */
  maxKeyBytes?: number
}

export interface GetOptions {
  /** Ends this caller's wait (rejecting with the signal's reason); the shared load goes on for others. */
  signal?: AbortSignal
}

export interface SetOptions {
  /** Time to live in ms, counted by the owner from when it stores the value. Default: the group's `ttlMs`. */
  ttlMs?: number
}

export interface SetResult {
  /** The peer that stored the value (the owner, or its replica when the owner was unreachable). */
  owner: string
  /** The version the owner gave the value. */
  version: number
  /** Absolute expiry, ms since the epoch; 0: never. */
  expiresAt: number
  /** Peers whose older copies could not be dropped (they were unreachable). */
  unreachable: string[]
}

export interface RemoveResult {
  /** Peers that dropped the key (this one included). */
  acknowledged: string[]
  /** Peers that could not be reached; they drop nothing until they hear of it. */
  unreachable: string[]
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
  /** Failed attempts to fetch from a peer (the next replica or a local load answered instead). */
  peerErrors: number
  /** Loads here of keys another peer owns, because neither it nor a replica could answer. */
  localLoads: number
  /** Requests served to other peers (GET, PUT). */
  serverRequests: number
  /** Loader failures (each a LoadError to every waiter). */
  loadErrors: number
  /** Calls to set(). */
  sets: number
  /** Calls to remove(). */
  removes: number
  /** Copies received from owners as a replica. */
  replicaWrites: number
  /** Expired values returned while a background refresh ran (staleWhileRevalidateMs). */
  staleHits: number
  /** Misses at the owner answered by a replica's copy instead of the origin (after a restart or a membership change). */
  replicaFills: number
  /** Flights under way now. */
  inFlight: number
  /** The main cache (keys owned or replicated here); `expirations` counts entries that expired. */
  main: CacheStats
  /** The hot cache (copies of hot keys owned elsewhere). */
  hot: CacheStats
}
