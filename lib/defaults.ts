// Every default of every options type, in one place. The code reads them from here, each option's
// TSDoc says `@default` with a link here, and test/defaults.test.ts checks that the README's
// "Defaults" table shows these same values, so the three cannot drift apart. README, "Defaults",
// says how each was chosen. The objects are frozen: a default is changed by passing an option.

/** Defaults of {@link PeerOptions}. */
export const PEER_DEFAULTS = Object.freeze({
  basePath: '/_peercache/',
  awaitPeers: false,
  readyTimeoutMs: 5000,
  vnodes: 500,
  peerTimeoutMs: 1000,
  fetchTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  connections: 8,
  pipelining: 1,
  keepAliveTimeoutMs: 4000,
  maxBatchKeys: 128,
  peerStreams: true,
  probeTimeoutMs: 1000,
  fanOut: 16,
  handOffMs: 2000,
  replicaPeekMs: 60_000,
  handOffBytes: 64 * 1024 * 1024,
  maxBatchBytes: 8 << 20,
  profiling: false,
  maxMessageBytes: 1024 * 1024,
  maxQueuedMessages: 10_000,
} as const)

/** Defaults of {@link BackupOptions} (PeerOptions `backup`); the README's table names them `backup.*`. */
export const BACKUP_DEFAULTS = Object.freeze({
  intervalMs: 60_000,
  keep: 3,
  restoreOnStart: true,
} as const)

/** Defaults of {@link LocksOptions} (PeerOptions `locks`); the README's table names them `locks.*`. */
export const LOCK_DEFAULTS = Object.freeze({
  ttlMs: 10_000,
  replicas: 2,
  maxWaiters: 1000,
} as const)

/** Defaults of {@link ListenOptions}. */
export const LISTEN_DEFAULTS = Object.freeze({
  port: 0,
  host: '127.0.0.1',
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
} as const)

/** Defaults of {@link GroupOptions}. */
export const GROUP_DEFAULTS = Object.freeze({
  codec: 'bytes',
  replicas: 2,
  hotCacheRatio: 0.125,
  hotThreshold: 2,
  ttlMs: 0,
  staleWhileRevalidateMs: 0,
  staleIfErrorMs: 0,
  loadTimeoutMs: 4000,
  absentTtlMs: 0,
  maxKeyBytes: 4096,
  maxPeerLoads: 32,
  maxQueuedPeerLoads: 256,
  maxQueuedEvents: 10_000,
} as const)

/** Defaults of {@link UpdateOptions} (`group.update()`); the README's table names them `update.*`. */
export const UPDATE_DEFAULTS = Object.freeze({
  retries: 50,
} as const)

/** Defaults of {@link AuthOptions} (signed requests between peers). */
export const AUTH_DEFAULTS = Object.freeze({
  maxSkewMs: 5000,
  maxReplayEntries: 200_000,
} as const)

/** Defaults of {@link PeerHealthOptions} (failure detection). */
export const HEALTH_DEFAULTS = Object.freeze({
  failuresToDown: 2,
  probeTimeoutMs: 1000,
  cooldownMs: 250,
  maxCooldownMs: 1000,
} as const)

/** Bounds of the hints kept for peers that missed writes (lib/hints.ts). */
export const HINTS_DEFAULTS = Object.freeze({
  maxHints: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxAgeMs: 600_000,
} as const)

/** Defaults of {@link DnsDiscoveryOptions}. */
export const DISCOVERY_DEFAULTS = Object.freeze({
  protocol: 'http',
  intervalMs: 5000,
  families: Object.freeze([4, 6] as const),
} as const)
