// The types a user writes against: the options of a Peer and of its groups (each documented where it
// is declared, with its unit and default: the values live in defaults.ts), the loader's context,
// results and stats.
// Over 300 lines: it is documentation first (every option with its unit and default, where it is
// declared), as lru-cache does; the code in it is a few lines.
import type { CacheStats } from './cache.js'
import type { Codec, CodecName } from './codec.js'
import type { AuthOptions } from './auth.js'
import type { BACKUP_DEFAULTS, GROUP_DEFAULTS, HINTS_DEFAULTS, LISTEN_DEFAULTS, PEER_DEFAULTS, UPDATE_DEFAULTS } from './defaults.js'
import type { HealthReason, PeerState } from './health.js'
import type { Logger } from './log.js'
import type { ServeOptions } from './listen.js'

export interface PeerOptions extends PeerSecurityOptions {
  /**
   * The URL at which the other peers reach this process, e.g. `http://10.0.0.5:7001`. Only the
   * origin (scheme, host, port) counts: it is this peer's identity on the ring. Required.
   */
  self: string
  /**
   * Every peer's URL, this one included (added if missing). The order does not matter: every
   * process given the same set builds the same ring. Default: `[self]`.
   */
  peers?: readonly string[]
  /**
   * The membership comes later, from `setPeers()` (DNS discovery: `discover()` or `DnsDiscovery`),
   * not from `peers`. This peer is ready once the first `setPeers()` came and every member it names
   * has answered a health probe (members started at the same moment may not listen yet), or
   * `readyTimeoutMs` after that call. Until then `peer.ready()` waits, the health endpoint answers
   * 503 `starting`, and a get, set or remove that needs the ring waits (up to `readyTimeoutMs`)
   * rather than taking this process for the only member and loading every key itself.
   * false: the `peers` given are the membership, ready at once.
   * @default {@link PEER_DEFAULTS}.awaitPeers (false)
   */
  awaitPeers?: boolean
  /**
   * With `awaitPeers`: how long a get, set, remove or clear made before readiness waits for it, in
   * ms. Past it, it goes on with the membership known so far (before the first `setPeers()`, this
   * process alone: it loads the key itself) and a warning is logged once. Cached keys never wait.
   * Also how long, after the first `setPeers()`, readiness waits for members that do not answer.
   * @default {@link PEER_DEFAULTS}.readyTimeoutMs (5000)
   */
  readyTimeoutMs?: number
  /**
   * Path prefix of the peer protocol; must start and end with `/`.
   * @default {@link PEER_DEFAULTS}.basePath (`/_peercache/`)
   */
  basePath?: string
  /**
   * Points per peer on the hash ring; lower it to 100-160 above ~200 peers (README, "Defaults").
   * @default {@link PEER_DEFAULTS}.vnodes (500)
   */
  vnodes?: number
  /**
   * How long a peer may take to start answering a fetch, in ms (undici's headersTimeout), and how
   * long a replica copy (PUT) or a drop (DELETE) may take. Peers send headers before they wait on any
   * load, so this measures whether the peer is alive, not the origin: past it the peer is suspect
   * and the next replica or a local load answers.
   * @default {@link PEER_DEFAULTS}.peerTimeoutMs (1000)
   */
  peerTimeoutMs?: number
  /**
   * How long a value may take once a peer has started answering, in ms (the longest wait between two
   * values of a batch), and how long a set may take at its owner (which copies it to its replicas
   * meanwhile). It includes the owner's origin load, so keep it above your loader's slowest normal
   * latency. Past it, the keys still waiting on an owner that is alive (it sends heartbeats while
   * loading) fail with LoadTimeoutError, and the owner stays up; on a silent one they go elsewhere.
   * @default {@link PEER_DEFAULTS}.fetchTimeoutMs (5000)
   */
  fetchTimeoutMs?: number
  /**
   * How long connecting to a peer may take, in ms (undici's connectTimeout).
   * @default {@link PEER_DEFAULTS}.connectTimeoutMs (1000)
   */
  connectTimeoutMs?: number
  /**
   * Keep-alive connections per peer (undici Pool `connections`).
   * @default {@link PEER_DEFAULTS}.connections (8)
   */
  connections?: number
  /**
   * HTTP/1.1 requests in flight per connection (undici `pipelining`; 1: none).
   * @default {@link PEER_DEFAULTS}.pipelining (1)
   */
  pipelining?: number
  /**
   * How long an idle keep-alive connection to a peer stays open, in ms.
   * @default {@link PEER_DEFAULTS}.keepAliveTimeoutMs (4000)
   */
  keepAliveTimeoutMs?: number
  /**
   * Most keys in one batched fetch. A get goes out at once when no batch to its peer is in flight;
   * gets made while one is travel together in the next request (README, "Protocol"); 1 turns batching off.
   * @default {@link PEER_DEFAULTS}.maxBatchKeys (128)
   */
  maxBatchKeys?: number
  /**
   * Send gets on one persistent stream per peer: an HTTP/1.1 Upgrade on the peer port, then request
   * and answer frames with ids, in any order (README, "Protocol"), so that a get costs no HTTP
   * request. A peer that refuses the upgrade (an older version, a proxy, `peer.handler` mounted
   * without `peer.attach(server)`) gets batched requests instead, and the upgrade is tried again a
   * minute later. false: batched requests only.
   * @default {@link PEER_DEFAULTS}.peerStreams (true)
   */
  peerStreams?: boolean
  /**
   * How long a health probe (`GET {basePath}health`) may take, in ms.
   * @default {@link PEER_DEFAULTS}.probeTimeoutMs (1000)
   */
  probeTimeoutMs?: number
  /** Called when another peer's state changes (up, suspect, down): for logs and metrics. */
  onPeerStateChange?: (peer: string, from: PeerState, to: PeerState, reason: HealthReason) => void
  /**
   * Where this peer logs, with pino's interface (`info(fields, message)` and debug, warn, error): a
   * pino logger fits as is. It hears of membership changes (setPeers), other peers going suspect,
   * down (warn) and up, peers announcing that they leave, this peer leaving, and errors nothing else
   * reports; never one line per get. Default: silent.
   */
  logger?: Logger
  /**
   * Bounds of the hints kept for peers that missed writes while they could not be reached (replayed
   * when they are back): how many, how many bytes of values, and for how long, in ms. Past a bound the
   * peer is told, when it is back, to drop everything it holds instead.
   * @default {@link HINTS_DEFAULTS} (100,000 hints, 64 MiB, 600,000 ms)
   */
  hints?: { maxHints?: number; maxBytes?: number; maxAgeMs?: number }
  /**
   * Most requests under way at once when one operation fans out (replica copies, remove broadcasts).
   * @default {@link PEER_DEFAULTS}.fanOut (16)
   */
  fanOut?: number
  /**
   * For how long after this peer starts, or its view of the ring changes (a peer joins, leaves, goes
   * down or comes back), an owner's miss asks the key's replicas for their copy before it loads from
   * the origin, in ms. Only then may the owner have missed writes its replicas kept; past it a cold
   * miss is one load, with no round trip first. 0 never asks; a very large value always asks.
   * @default {@link PEER_DEFAULTS}.replicaPeekMs (60000)
   */
  replicaPeekMs?: number
  /**
   * On close, how long this peer may spend copying the entries it owns to the peers that will own
   * them once it has left, in ms (README, "Hand-off on close"); 0 turns hand-off off. A copy under
   * way at the deadline may take peerTimeoutMs more.
   * @default {@link PEER_DEFAULTS}.handOffMs (2000)
   */
  handOffMs?: number
  /**
   * On close, most bytes (values and keys) handed off, the most recently used entries first.
   * @default {@link PEER_DEFAULTS}.handOffBytes (67108864: 64 MiB)
   */
  handOffBytes?: number
  /** Saves every group's snapshot to a directory on a schedule and on close, and restores from it (README, "Backups"). Default: none. */
  backup?: BackupOptions
  /** Lease locks hosted by this peer and asked for with `peer.lock()` (README, "Locks"). */
  locks?: LocksOptions
}

/** Lease locks (PeerOptions `locks`); the README's table names them `locks.*`. */
export interface LocksOptions {
  /**
   * How long a lease lasts when `peer.lock()` is given no `ttlMs`, in ms: it ends then unless
   * released before. Give every peer the same.
   * @default {@link LOCK_DEFAULTS}.ttlMs (10000)
   */
  ttlMs?: number
  /**
   * On how many peers besides its owner a lease is recorded before it is granted (the next peers on
   * the ring after the lock name's owner): the death of up to this many holders neither loses a live
   * lease nor grants it twice. Give every peer the same.
   * @default {@link LOCK_DEFAULTS}.replicas (2)
   */
  replicas?: number
  /**
   * Most callers that may wait for one lock at its owner; one more is refused with LockError
   * `queue-full`.
   * @default {@link LOCK_DEFAULTS}.maxWaiters (1000)
   */
  maxWaiters?: number
}

/** Options of one `peer.lock()` call. */
export interface LockOptions {
  /** How long the lease lasts once granted, in ms (1 to 86,400,000). Default: the peer's `locks.ttlMs`. */
  ttlMs?: number
  /** Aborting it while waiting rejects at once with an AbortError (its cause: the signal's reason); the lease is never held. */
  signal?: AbortSignal
}

/** Scheduled backups of every group (PeerOptions `backup`). */
export interface BackupOptions {
  /**
   * The directory of this process's backups, made if missing: one file per group and save,
   * `{group}.{ms since the epoch}.snap`. Give each process its own. Required.
   */
  dir: string
  /**
   * How often every group is saved, in ms; also saved on close.
   * @default {@link BACKUP_DEFAULTS}.intervalMs (60000)
   */
  intervalMs?: number
  /**
   * How many backups of each group are kept (the newest); older ones are deleted after each save.
   * @default {@link BACKUP_DEFAULTS}.keep (3)
   */
  keep?: number
  /**
   * Whether a group restores from its newest readable backup when it is created (`peer.group()`),
   * in the background: `peer.restored()` says when and what.
   * @default {@link BACKUP_DEFAULTS}.restoreOnStart (true)
   */
  restoreOnStart?: boolean
}

/** Peer security options, part of PeerOptions (README, "Security"). */
export interface PeerSecurityOptions {
  /**
   * Peer authentication: every request this peer sends is signed with the shared secret, and every
   * request it serves must be (else 401, and nothing is loaded, stored, dropped or marked down).
   * Give every peer the same secret(s). Off by default; turn it on whenever the port can be reached
   * by anything but the peers (README, "Security").
   */
  auth?: AuthOptions
  /**
   * What this peer trusts and presents when it connects to `https://` peers (undici connect
   * options): the CA that signed the peers' certificates, and this peer's own certificate and key
   * when the peers require one (mutual TLS: `listen({ tls: { requestCert: true } })`).
   */
  tls?: ClientTlsOptions
  /**
   * Most bytes of values in one batch answer this peer sends; the keys past it are answered
   * `retry` and asked for again in the next batch (at least one value always goes). Bounds what one
   * small request can make this peer send.
   * @default {@link PEER_DEFAULTS}.maxBatchBytes (8 MiB)
   */
  maxBatchBytes?: number
  /**
   * Serve CPU profiles and heap snapshots of this process on the peer port, like Go's pprof:
   * `GET {basePath}debug/profile?seconds=N` (1 to 60, default 10) and `GET {basePath}debug/heap`
   * (README, "Profiling"). Signed like all peer traffic when `auth` is set; a heap snapshot pauses
   * the process while it is written, so keep this off where the port is reachable by others.
   * @default {@link PEER_DEFAULTS}.profiling (false)
   */
  profiling?: boolean
  /**
   * Largest pub/sub message, in bytes (its body: the bytes, or the JSON text): `publish` refuses a
   * larger one with InvalidOptionError, and this peer answers 413 to one from a peer.
   * @default {@link PEER_DEFAULTS}.maxMessageBytes (1 MiB)
   */
  maxMessageBytes?: number
  /**
   * Pub/sub messages that may wait for each `peer.subscribe()` listener, a count; past it they are
   * dropped (peer.messagesDropped counts them, a warning is said once), so a slow subscriber never
   * holds up this process.
   * @default {@link PEER_DEFAULTS}.maxQueuedMessages (10000)
   */
  maxQueuedMessages?: number
}

/** Every name PeerOptions has: anything else given to `new Peer()` is refused (tsc keeps the two in step). */
export const PEER_OPTION_NAMES = Object.keys({
  self: true,
  peers: true,
  awaitPeers: true,
  readyTimeoutMs: true,
  basePath: true,
  vnodes: true,
  peerTimeoutMs: true,
  fetchTimeoutMs: true,
  connectTimeoutMs: true,
  connections: true,
  pipelining: true,
  keepAliveTimeoutMs: true,
  maxBatchKeys: true,
  peerStreams: true,
  probeTimeoutMs: true,
  onPeerStateChange: true,
  fanOut: true,
  logger: true,
  hints: true,
  backup: true,
  locks: true,
  handOffMs: true,
  replicaPeekMs: true,
  handOffBytes: true,
  auth: true,
  tls: true,
  maxBatchBytes: true,
  profiling: true,
  maxMessageBytes: true,
  maxQueuedMessages: true,
} satisfies Record<keyof PeerOptions, true>)

/** Every name BackupOptions has. */
export const BACKUP_OPTION_NAMES = Object.keys({
  dir: true,
  intervalMs: true,
  keep: true,
  restoreOnStart: true,
} satisfies Record<keyof BackupOptions, true>)

/** Every name LocksOptions has. */
export const LOCKS_OPTION_NAMES = Object.keys({
  ttlMs: true,
  replicas: true,
  maxWaiters: true,
} satisfies Record<keyof LocksOptions, true>)

/** The client side of TLS between peers (undici's `connect` options). */
export interface ClientTlsOptions {
  /** The CA(s) that signed the peers' certificates, PEM. Default: Node's public CAs. */
  ca?: string | Buffer | (string | Buffer)[]
  /** This peer's certificate, PEM, for peers that require one (mutual TLS). */
  cert?: string | Buffer
  /** The private key of `cert`, PEM. */
  key?: string | Buffer
}

export interface ListenOptions extends ServeOptions {
  /**
   * The TCP port; 0: any free port.
   * @default {@link LISTEN_DEFAULTS}.port (0)
   */
  port?: number
  /**
   * The address to bind. Bind to an address the other peers can reach.
   * @default {@link LISTEN_DEFAULTS}.host (`127.0.0.1`)
   */
  host?: string
}

/** What a loader gets besides the key. */
export interface LoadContext {
  /** The group's name. */
  readonly group: string
  /** Aborted when nobody waits for this load any more (every caller aborted), past loadTimeoutMs, or when the peer closes. */
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
   * value bytes plus its key length plus 160 bytes of measured per-entry overhead (400 more for a
   * value over 8 KiB, kept as a Buffer of its own; README, "Defaults"), so that RSS tracks the budget.
   * Required; > 0.
   */
  maxBytes: number
  /**
   * The origin: called at most once at a time per key in this process, normally only at the key's
   * owner. With `absentTtlMs`, returning `undefined` says "not found" (an absent value, cached too).
   * Required unless `absentTtlMs` > 0: a group without one is filled by `set` alone, and every
   * other key is absent.
   */
  load?: (key: string, ctx: LoadContext) => Promise<Loaded<T>> | Loaded<T>
  /**
   * How values become bytes: 'bytes' (Buffer out), 'string' (UTF-8), 'json', or { encode, decode }.
   * @default {@link GROUP_DEFAULTS}.codec (`'bytes'`)
   */
  codec?: CodecName | Codec<T>
  /**
   * How many peers hold each key: the owner and the next `replicas - 1` distinct peers on the ring,
   * which take over at once when the owner dies. 1 is groupcache's behaviour (owner only). Each
   * extra replica costs main-cache room and one PUT per fill. 1 to 5.
   * @default {@link GROUP_DEFAULTS}.replicas (2)
   */
  replicas?: number
  /**
   * Share of `maxBytes` for the hot cache (copies of keys that other peers own and this process
   * asks for often), from 0 (off) to 0.5 (groupcache keeps 1/8 of the main cache's size).
   * @default {@link GROUP_DEFAULTS}.hotCacheRatio (0.125)
   */
  hotCacheRatio?: number
  /**
   * How many fetches of a key from its owner, within the recent window (about 4,000 fetches),
   * make it hot enough to keep a copy here: at 2, a key asked for again is hot, a one-off is not.
   * @default {@link GROUP_DEFAULTS}.hotThreshold (2)
   */
  hotThreshold?: number
  /**
   * Time to live of values in ms; 0: no expiry. The loader (`ctx.ttlMs`) and `set` can override it per key.
   * @default {@link GROUP_DEFAULTS}.ttlMs (0)
   */
  ttlMs?: number
  /**
   * For how long after its expiry a value may still be returned, in ms, while one background
   * refresh (per key and process) gets the new one: gets stay fast when a popular key expires.
   * 0: off, an expired value is never returned.
   * @default {@link GROUP_DEFAULTS}.staleWhileRevalidateMs (0)
   */
  staleWhileRevalidateMs?: number
  /**
   * For how long after its expiry a value is still returned when its reload fails (the origin
   * threw, or took longer than `loadTimeoutMs`), in ms: a service keeps answering through an origin
   * outage (a grace period). Counted in `stats().staleIfErrorHits`. With `staleWhileRevalidateMs`
   * too, an expired value is first served at once while it is refreshed (for that window), and only
   * past it does a get wait for the load, falling back to the old value if the load fails. 0: off.
   * @default {@link GROUP_DEFAULTS}.staleIfErrorMs (0)
   */
  staleIfErrorMs?: number
  /**
   * How long one origin load may take, in ms; past it every waiter gets a `LoadTimeoutError` and the
   * flight ends (the load's late value is still cached if nothing newer arrived). Below the askers'
   * `fetchTimeoutMs`, so that they hear the timeout from the owner instead of giving up on it and
   * loading the key again themselves. 0: no limit.
   * @default {@link GROUP_DEFAULTS}.loadTimeoutMs (4000)
   */
  loadTimeoutMs?: number
  /**
   * How long an absent value is cached, in ms (cluster-wide, like a value: at the owner, its
   * replicas and as hot copies; a set or remove replaces it): a loader returning `undefined` says
   * the origin has no such key, and `get` resolves `undefined` until then, with one origin load per
   * key in the cluster. The loader may choose another time with `ctx.ttlMs`. 0: off, and a loader's
   * `undefined` is an InvalidValueError (as for any value the codec cannot carry). Every member of
   * the cluster must run a peercache that knows absent values before this is turned on.
   * @default {@link GROUP_DEFAULTS}.absentTtlMs (0)
   */
  absentTtlMs?: number
  /**
   * Longest key, in bytes of UTF-8.
   * @default {@link GROUP_DEFAULTS}.maxKeyBytes (4096)
   */
  maxKeyBytes?: number
  /**
   * Most origin loads this process runs at once for other peers' requests in this group (its own
   * gets are not counted). Bounds what a burst of batches can make the origin do.
   * @default {@link GROUP_DEFAULTS}.maxPeerLoads (32)
   */
  maxPeerLoads?: number
  /**
   * Most loads for peers waiting for one of the `maxPeerLoads` slots; past it a peer's request is
   * answered 503 `overloaded` (with Retry-After) and that peer loads the key itself.
   * @default {@link GROUP_DEFAULTS}.maxQueuedPeerLoads (256)
   */
  maxQueuedPeerLoads?: number
  /**
   * Change events that may wait for each `group.on('change')` listener, a count: a listener slower
   * than the changes drops what comes past it (counted in stats().eventsDropped, a warning said once),
   * so it never holds up gets or writes.
   * @default {@link GROUP_DEFAULTS}.maxQueuedEvents (10000)
   */
  maxQueuedEvents?: number
}

/** Every name GroupOptions has: anything else given to `peer.group()` is refused (tsc keeps the two in step). */
export const GROUP_OPTION_NAMES = Object.keys({
  maxBytes: true,
  load: true,
  codec: true,
  replicas: true,
  hotCacheRatio: true,
  hotThreshold: true,
  ttlMs: true,
  staleWhileRevalidateMs: true,
  staleIfErrorMs: true,
  loadTimeoutMs: true,
  maxKeyBytes: true,
  absentTtlMs: true,
  maxPeerLoads: true,
  maxQueuedPeerLoads: true,
  maxQueuedEvents: true,
} satisfies Record<keyof GroupOptions, true>)

export interface GetOptions {
  /** Ends this caller's wait (rejecting with the signal's reason); the shared load goes on for others. */
  signal?: AbortSignal
}

export interface SetOptions {
  /** Time to live in ms, counted by the owner from when it stores the value. Default: the group's `ttlMs`. */
  ttlMs?: number
  /**
   * Compare-and-set: store only if the key's owner holds this version (from `getEntry`), else reject
   * with ConflictError and change nothing. Decided at the owner, atomically with other writes of the key.
   */
  ifVersion?: number
  /** Store only if the key's owner holds no value for it (none cached, or an absent value), else ConflictError. */
  ifAbsent?: boolean
}

/** What `getEntry` reads from the key's owner: the value with the version to pass to `set(..., { ifVersion })`. */
export interface VersionedValue<T> {
  value: T
  /** The owner's version of the value. */
  version: number
  /** Absolute expiry, ms since the epoch; 0: never. */
  expiresAt: number
}

export interface UpdateOptions {
  /**
   * How many times a conflict (another write of the key between the read and the write) is retried,
   * with a random pause of up to 2^attempt ms (at most 100 ms) before each; past it, the last
   * ConflictError rejects.
   * @default {@link UPDATE_DEFAULTS}.retries (50)
   */
  retries?: number
  /** Time to live of the written value in ms. Default: the group's `ttlMs`. */
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

export interface SnapshotOptions {
  /** End `writable` when the snapshot is written (false: leave it open, e.g. a socket that carries more). Default: true. */
  end?: boolean
  /** Stops writing (the promise rejects with the signal's reason; what was written is a truncated snapshot). */
  signal?: AbortSignal
}

export interface SnapshotResult {
  /** Entries written (fresh entries of the main and hot caches). */
  entries: number
  /** Bytes written, header and end mark included. */
  bytes: number
  /** The time the snapshot names in its header, ms since the epoch. */
  createdAt: number
}

/** What `restore()` did with each record of a snapshot. */
export interface RestoreResult {
  /** Records now held here: in the main cache, or as hot copies. */
  restored: number
  /**
   * Whole records not kept: expired, a key this process neither owns nor replicates with no room
   * left in the hot cache, older than what is held here (or than a removal), too large for the
   * group, or a key or value the group refuses.
   */
  skipped: number
  /**
   * Records lost to damage: a checksum that failed (that record is dropped, the reading goes on), or
   * a cut (the input ended inside a record or before the end mark; nothing after it exists).
   */
  damaged: number
  /** Whether the snapshot was read to its end mark (false: it was cut off or damaged beyond reading). */
  complete: boolean
  /** When the snapshot was taken, ms since the epoch (from its header). */
  createdAt: number
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
  /** Of peerErrors, those a peer refused with 401 (a secret it does not accept, a stale or replayed request). */
  authErrors: number
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
  /** Calls to clear() in this process (clears from other peers are not counted). */
  clears: number
  /** Copies received from owners as a replica. */
  replicaWrites: number
  /** Expired values returned because their reload failed (staleIfErrorMs). */
  staleIfErrorHits: number
  /** Origin loads that took longer than loadTimeoutMs (each a LoadTimeoutError to its waiters). */
  loadTimeouts: number
  /** Expired values returned while a background refresh ran (staleWhileRevalidateMs). */
  staleHits: number
  /** Loads whose loader returned `undefined`: absent values cached (absentTtlMs). */
  absentLoads: number
  /** Misses at the owner answered by a replica's copy instead of the origin (after a restart or a membership change). */
  replicaFills: number
  /**
   * Gets that missed here, by what answered them (a get that joined a flight counts by that flight's
   * answer): the first peer asked (the owner, or the first holder up while it is down), a replica
   * (a later holder when the first could not answer, or the owner's miss filled from a replica's
   * copy), or an origin load in this process. With the hits and failedGets they add up to `gets`
   * (background refreshes of stale values are not gets).
   */
  peerGets: number
  replicaGets: number
  loadGets: number
  /** Gets that rejected: the origin failed, the caller aborted, the peer was closed. */
  failedGets: number
  /** Gets that joined a load or fetch of the same key already under way (also counted by source). */
  dedupedGets: number
  /** Peeks from other peers that found nothing here (counted in serverRequests too). */
  serverMisses: number
  /** Requests from other peers whose load here failed (counted in serverRequests too). */
  serverErrors: number
  /** Values the origin gave that are larger than the group can cache: each get of such a key loads it again. */
  tooLarge: number
  /** Conditional sets (ifVersion, ifAbsent) made here that the owner refused with ConflictError, update()'s included. */
  conflicts: number
  /** Calls to update() that wrote their value. */
  updates: number
  /** Conflicts update() retried (a fresh read and write each). */
  updateRetries: number
  /** Change events dropped because a listener's queue was full (maxQueuedEvents): that listener never saw them. */
  eventsDropped: number
  /** Flights under way now. */
  inFlight: number
  /** Origin loads running now for other peers (at most maxPeerLoads). */
  peerLoadsRunning: number
  /** Origin loads for other peers waiting for a slot (at most maxQueuedPeerLoads; past it, peers are refused). */
  peerLoadsQueued: number
  /** The main cache (keys owned or replicated here); `expirations` counts entries that expired. */
  main: CacheStats
  /** The hot cache (copies of hot keys owned elsewhere). */
  hot: CacheStats
}

/** The counters a group and its parts (owner side, replication) add to; stats() reports them. */
export type GroupCounters = {
  -readonly [K in Exclude<keyof GroupStats, 'group' | 'inFlight' | 'peerLoadsRunning' | 'peerLoadsQueued' | 'main' | 'hot'>]: number
}

export function zeroCounters(): GroupCounters {
  const names = ['gets', 'mainHits', 'hotHits', 'staleHits', 'loads', 'dedupedLoads', 'peerLoads', 'peerErrors', 'authErrors', 'localLoads']
  names.push(
    'serverRequests',
    'loadErrors',
    'sets',
    'removes',
    'replicaWrites',
    'replicaFills',
    'absentLoads',
    'tooLarge',
    'staleIfErrorHits',
    'loadTimeouts',
    'clears',
    'conflicts',
    'updates',
    'updateRetries',
    'eventsDropped',
  )
  names.push('peerGets', 'replicaGets', 'loadGets', 'failedGets', 'dedupedGets', 'serverMisses', 'serverErrors')
  return Object.fromEntries(names.map((n) => [n, 0])) as GroupCounters
}
