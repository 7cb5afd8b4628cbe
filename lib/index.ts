// The public API. Everything else under lib/ is internal.
export { Peer } from './peer.js'
export { Group } from './group.js'
export type {
  PeerOptions,
  BackupOptions,
  LocksOptions,
  LockOptions,
  ListenOptions,
  GroupOptions,
  GetOptions,
  GroupStats,
  LoadContext,
  Loaded,
  SetOptions,
  SetResult,
  RemoveResult,
  SnapshotOptions,
  SnapshotResult,
  RestoreResult,
  ClientTlsOptions,
  UpdateOptions,
  VersionedValue,
} from './options.js'
export { SNAPSHOT_FORMAT } from './snapshot-format.js'
export {
  PEER_DEFAULTS,
  LISTEN_DEFAULTS,
  GROUP_DEFAULTS,
  HEALTH_DEFAULTS,
  DISCOVERY_DEFAULTS,
  BACKUP_DEFAULTS,
  HINTS_DEFAULTS,
  AUTH_DEFAULTS,
  UPDATE_DEFAULTS,
  LOCK_DEFAULTS,
} from './defaults.js'
export type { BackupRestore } from './backup.js'
export type { Lease, LeaseRelease, LockState } from './lock-service.js'
export type { ChangeEvent, ChangeKind, ChangeListener } from './events.js'
export type { MessageInfo, MessageListener, PublishResult } from './pubsub.js'
export { type AuthOptions, signRequest } from './auth.js'
export type { ServerTlsOptions } from './listen.js'
export type { CacheStats } from './cache.js'
export type { Codec, CodecName } from './codec.js'
export type { Handler } from './server.js'
export { PROTOCOL_VERSION } from './protocol.js'
export type { PeerHealthSnapshot, PeerState, HealthReason } from './health.js'
export type { MetricsOptions, MetricsRegistry } from './metrics.js'
export { loadChannel, fetchChannel, type LoadTraceContext, type FetchTraceContext } from './tracing.js'
export type { Logger } from './log.js'
export { DnsDiscovery, discover, DiscoveryError, type DnsDiscoveryOptions, type DnsResolver, type DiscoveryFailure } from './discovery.js'
export {
  PeercacheError,
  InvalidKeyError,
  InvalidGroupError,
  InvalidOptionError,
  InvalidValueError,
  LoadError,
  LoadTimeoutError,
  PeerUnavailableError,
  ClosedError,
  AbortError,
  SnapshotError,
  ConflictError,
  InvalidLockError,
  LockError,
} from './errors.js'
