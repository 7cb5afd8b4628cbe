// The peer protocol's names, in one place for the client and the server (README, "Protocol").
// Plain HTTP/1.1: bytes in the body, metadata in headers, errors as status + a machine-readable reason.

/** Raised on any incompatible change; a peer answers a request of another version with 400 `protocol`. */
export const PROTOCOL_VERSION = 2

export const DEFAULT_BASE_PATH = '/_peercache/'

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

/**
 * Percent-encodes every byte outside [A-Za-z0-9_~-]. Dots are escaped too, so a key of `.` or `..`
 * can never become a dot segment that some layer normalises away.
 */
export function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/[.!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** The path of a key's resource: `{basePath}{group}/{encoded key}`. */
export function keyPath(basePath: string, group: string, key: string): string {
  return `${basePath}${group}/${encodeKey(key)}`
}
