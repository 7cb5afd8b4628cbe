// The peer protocol's names, in one place for the client and the server (README, "Protocol").
// Plain HTTP/1.1: bytes in the body, metadata in headers, errors as status + a machine-readable reason.

/** Raised on any incompatible change; a peer answers a request of another version with 400 `protocol`. */
export const PROTOCOL_VERSION = 2

/** Most keys a batch may hold: a server refuses more (and `maxBatchKeys` may not ask for more). */
export const MAX_BATCH_KEYS = 1024

/**
 * Longest key the protocol carries, in bytes of UTF-8. PUT and DELETE name the key in the URL,
 * percent-encoded (up to 3 characters a byte), and Node refuses request heads over 16 KiB: 4 KiB
 * keys stay well within that.
 */
export const MAX_KEY_BYTES = 4096

/** A blank line this often while a lock acquire waits (lock-routes.ts), in ms; callers allow three times as long between lines. */
export const LOCK_HEARTBEAT_MS = 1000

export const HEADER = {
  /** Request and response: the protocol version the sender speaks. */
  protocol: 'x-peercache-protocol',
  /** Request: the URL of the asking peer (for logs and health). */
  from: 'x-peercache-from',
  /** Response: absolute expiry, ms since the epoch; absent means never. */
  expires: 'x-peercache-expires',
  /**
   * Response: the owner's version of the value. PUT of a replica: the version being copied.
   * DELETE: drop only copies older than this version (a set invalidating old copies).
   */
  version: 'x-peercache-version',
  /** PUT by a caller of set(): time to live in ms, counted by the owner from when it stores the value. */
  ttl: 'x-peercache-ttl',
  /** PUT answer to a set: the replicas the owner could not copy the value to, comma-separated. */
  unreachable: 'x-peercache-unreachable',
  /** PUT: `1` when the owner copies a value to a replica (stored as sent, if newer), absent for a set. */
  replica: 'x-peercache-replica',
  /**
   * `1` on a GET answer or a PUT whose entry is an absent value (the loader said "not found"; the
   * body is empty): it is cached and copied like a value. Only groups with absentTtlMs make them.
   */
  absent: 'x-peercache-absent',
  /**
   * PUT of a set: a compare-and-set, decided by the owner: the decimal version it must hold, or
   * `absent` for none. A 409 `conflict` answer names the owner's version in x-peercache-version.
   */
  ifVersion: 'x-peercache-if-version',
  /**
   * Batch request: how often, in ms, the asker wants a heartbeat frame while the answer waits on
   * origin loads (a quarter of its peerTimeoutMs), so that a slow origin never looks like a dead peer.
   */
  heartbeat: 'x-peercache-heartbeat',
  /**
   * DELETE of a key (the drops after a set or remove) and PUT (a set, a replica's copy of one):
   * `set` or `remove`, the change this write is part of, so that every process can announce it
   * (change events). A DELETE with `set` names the set's version in x-peercache-version and its
   * expiry in x-peercache-expires. Absent on writes that change nothing (loads, hand-off).
   */
  change: 'x-peercache-change',
  /** With x-peercache-change: the URL of the member whose set() or remove() made the change. */
  origin: 'x-peercache-origin',
  /** POST {basePath}publish: the channel, percent-encoded (content-type application/json: a JSON message, else bytes). */
  channel: 'x-peercache-channel',
  /** Error response: one of ErrorReason. */
  error: 'x-peercache-error',
} as const

/** Why a request failed, as a peer reports it. */
export type ErrorReason =
  | 'bad-request' // 400: a malformed path, key or header
  | 'protocol' // 400: another protocol version
  | 'unknown-group' // 404: this peer has no such group
  | 'load' // 500: the origin failed at this peer (a LoadError for every waiter)
  | 'invalid-value' // 500: the loader returned a value the group's codec cannot carry
  | 'closing' // 503: this peer is shutting down
  | 'internal' // 500: a bug; the asker treats it as the peer being unavailable
  | 'load-timeout' // 504: the origin took longer than the group's loadTimeoutMs at this peer
  | 'unauthorized' // 401: the request is not signed with a secret this peer accepts (or is stale or replayed)
  | 'overloaded' // 503 with Retry-After: too many origin loads for peers under way in this group
  | 'misdirected' // 421: a PUT to a peer that is neither the key's owner nor one of its replicas
  | 'conflict' // 409: a conditional set found another version at the owner (nothing written)
  | 'retry' // a batch frame only: the answer's byte budget is spent, ask for this key again
  | 'busy' // 409: a debug profile is being taken already (one at a time)

/**
 * Percent-encodes every byte outside [A-Za-z0-9_~-]. Dots are escaped too, so a key of `.` or `..`
 * can never become a dot segment that some layer normalises away.
 */
export function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/[.!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** The path of a key's resource: `{basePath}{group}/{encoded key}`; with the empty key (no key is empty), the group's own: `{basePath}{group}/`. */
export function keyPath(basePath: string, group: string, key: string): string {
  return `${basePath}${group}/${encodeKey(key)}`
}

// The shapes both ends of the wire share. The client (client.ts) produces and consumes them for a
// group; the server (server.ts) hands requests to a group's owner side (owner.ts) through ServedGroup.

/** A value as it crosses the wire, with the owner's metadata. `bytes` may be a view into a network buffer: copy it (ownBytes) to keep it. */
export interface WireEntry {
  readonly bytes: Buffer
  /** Absolute expiry in ms since the epoch, decided by the owner; 0: never. */
  readonly expiresAt: number
  /** The owner's version of the value: a later write has a larger one. */
  readonly version: number
  /** An absent value: the origin has nothing for the key (`bytes` is empty). Cached like a value. */
  readonly absent?: boolean
}

/** What a peer stored for a PUT. */
export interface Stored {
  version: number
  expiresAt: number
  /** Replicas the owner could not copy a set to. */
  unreachable: string[]
}

/** A set's condition, checked by the owner against the version it holds: this version, or none at all. */
export type WriteCondition = { ifVersion: number } | { ifAbsent: true }

/** What a write says about the change it is part of (x-peercache-change): every process announces it. */
export interface ChangeNote {
  kind: 'set' | 'remove'
  /** The member whose set() or remove() made the change. */
  origin: string
  /** A set's expiry, ms since the epoch (0: never), on the drops that follow it. */
  expiresAt?: number
}

/** What a PUT carries besides the bytes. */
export type PutMeta = (
  | { replica: false; ttlMs: number | undefined; condition?: WriteCondition } // a set(): the receiver is the owner and decides version and expiry
  | { replica: true; version: number; expiresAt: number } // the owner copying a value to a replica
) & { absent?: boolean; note?: ChangeNote } // absent: the value is an absent one (the bytes are empty)

/** What a group asks of other peers (the HTTP client; anything else in tests). */
export interface PeerTransport {
  /** The value `peer` holds or loads for `key` (it never asks another peer). */
  get(peer: string, group: string, key: string): Promise<WireEntry>
  /** The value `peer` holds in its caches, or undefined: it never loads. */
  peek(peer: string, group: string, key: string): Promise<WireEntry | undefined>
  put(peer: string, group: string, key: string, bytes: Uint8Array, meta: PutMeta): Promise<Stored>
  /** Drops `key` at `peer` (copies older than `before`, when given); resolves with the peer's tombstone version. */
  delete(peer: string, group: string, key: string, before?: number, note?: ChangeNote): Promise<number>
  /** Drops every entry of `group` at `peer` and has it refuse versions up to `epoch`; resolves with the peer's cleared line. */
  clear(peer: string, group: string, epoch: number): Promise<number>
  /** Tells `peer` to drop every value it holds (it missed writes that hints could not keep). */
  resync(peer: string): Promise<void>
}

/** What the server needs of a group: its answers to peers (owner.ts). */
export interface ServedGroup {
  /** The largest value this group can cache, in bytes: a bigger PUT body is refused (413). */
  readonly maxValueBytes: number
  /** The cached entry for `key`, if any: never loads. */
  peek(key: string): WireEntry | undefined
  /**
   * The entry for `key`: from the caches at once, or a promise of a local load (never from another
   * peer). `signal` is asked for only when the key has to wait for a load.
   */
  serve(key: string, signal: () => AbortSignal): WireEntry | Promise<WireEntry>
  /** A PUT: a set at this peer as the owner, or the owner's copy for this replica. */
  put(key: string, bytes: Buffer, meta: PutMeta): Promise<Stored>
  /** A DELETE: drop the copies of `key` (older than `before`, when given); returns the tombstone version. */
  drop(key: string, before?: number, note?: ChangeNote): number
  /** A DELETE of the group (`{basePath}{group}/`): drop every entry, refuse versions up to `epoch`; returns the cleared line. */
  clear(epoch: number): number
  /** Drops every value held, main and hot (a resync): they reload from owners and replicas. */
  dropAll(): void
}
