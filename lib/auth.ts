// Peer authentication: only processes that hold the shared secret may talk to a peer. Every request
// carries an HMAC-SHA256 over what it asks for (method, path, a digest of its body), who asks (the
// x-peercache-from URL), when (a timestamp) and a nonce; the receiver checks it in constant time,
// refuses it outside the allowed clock skew and refuses a signature it has seen before (a replay).
// Why not TLS alone: TLS protects the wire, not the port; anyone who can connect could still ask.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { AUTH_DEFAULTS } from './defaults.js'
import { InvalidOptionError } from './errors.js'

export interface AuthOptions {
  /**
   * The secret every peer shares, at least 16 bytes (32 random bytes recommended:
   * `openssl rand -base64 32`). Give this or `secrets`.
   */
  secret?: string | Uint8Array
  /**
   * Several secrets, to rotate without downtime: the first signs, every one is accepted. Roll out
   * `[old, new]`, then `[new, old]`, then `[new]`. Give this or `secret`.
   */
  secrets?: readonly (string | Uint8Array)[]
  /**
   * How far a request's timestamp may be from the receiver's clock, either way, in ms: it covers the
   * clock difference between hosts and the time a request waits in the sender's queue. A captured
   * request can be replayed only within this window, and the receiver remembers every signature it
   * accepted for that long to refuse replays (README, "Security").
   * @default {@link AUTH_DEFAULTS}.maxSkewMs (5000)
   */
  maxSkewMs?: number
  /**
   * Most signatures remembered to refuse replays (about 150 bytes each, measured: 30 MB when full at
   * the default). Past it the oldest are forgotten and any request signed before them is refused
   * (401 `stale`), so replays stay refused and only a burst above `maxReplayEntries / maxSkewMs`
   * requests per ms (40 per ms at the defaults) is hurt.
   * @default {@link AUTH_DEFAULTS}.maxReplayEntries (200000)
   */
  maxReplayEntries?: number
}

/** Request headers of the scheme. */
export const AUTH_HEADER = {
  /** `{timestamp ms}.{nonce}.{signature}`, the nonce and signature in base64url. */
  signature: 'x-peercache-auth',
  /** SHA-256 of the body in base64url; absent means an empty body. */
  digest: 'x-peercache-digest',
} as const

/** Why a request was refused (the server answers 401 with it). */
export type AuthFailure = 'missing' | 'malformed' | 'stale' | 'bad-signature' | 'replayed' | 'bad-digest'

/** What is signed besides the timestamp and nonce. */
export interface SignedRequest {
  method: string
  /** The request target as sent (path and query). */
  path: string
  /** The sender's x-peercache-from URL ('' when it sends none). */
  from: string
  /** The body's digest (`digestOf`); EMPTY_DIGEST for no body. */
  digest: string
}

const MIN_SECRET_BYTES = 16
const SIGNATURE_FORMAT = /^(\d{1,15})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/

/** SHA-256 of `body`, base64url. */
export function digestOf(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('base64url')
}

export const EMPTY_DIGEST = digestOf(new Uint8Array(0))

export class Auth {
  readonly maxSkewMs: number
  readonly #keys: Buffer[]
  readonly #now: () => number
  /** Signatures accepted and still inside the window, with the time until which they would be accepted. */
  readonly #seen: LRUCache<string, number>
  /** Requests signed at or before this time are refused: a signature of theirs may have been forgotten. */
  #floor = 0
  /** Nonces are a random per-process prefix and a counter: unique without a syscall per request. */
  readonly #noncePrefix = randomBytes(8)
  #counter = 0

  /** `now` is the clock in ms (tests move it); default Date.now. */
  constructor(options: AuthOptions, now: () => number = Date.now) {
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('auth', 'must be an object { secret }')
    this.#keys = secretsOf(options)
    this.maxSkewMs = bounded('auth.maxSkewMs', options.maxSkewMs ?? AUTH_DEFAULTS.maxSkewMs, 1, 600_000)
    const max = bounded('auth.maxReplayEntries', options.maxReplayEntries ?? AUTH_DEFAULTS.maxReplayEntries, 1, 100_000_000)
    this.#now = now
    this.#seen = new LRUCache<string, number>({
      max,
      ttl: 2 * this.maxSkewMs,
      // lru-cache's own clock (performance.now) unless a test moves time.
      ...(now === Date.now ? {} : { perf: { now } }),
      dispose: (acceptedUntil, _sig, reason) => {
        // Forgotten while still acceptable: refuse everything signed that early from now on.
        if (reason === 'evict' && acceptedUntil >= this.#now()) this.#floor = Math.max(this.#floor, acceptedUntil - this.maxSkewMs)
      },
    })
  }

  /** The headers that authenticate a request: to add to it as they are. */
  sign(method: string, path: string, from: string, body?: Uint8Array): Record<string, string> {
    const digest = body === undefined || body.byteLength === 0 ? EMPTY_DIGEST : digestOf(body)
    const nonce = Buffer.allocUnsafe(12)
    this.#noncePrefix.copy(nonce)
    nonce.writeUInt32BE((this.#counter = (this.#counter + 1) >>> 0), 8)
    const time = String(Math.floor(this.#now()))
    const n = nonce.toString('base64url')
    const sig = mac(this.#keys[0]!, { method, path, from, digest }, time, n).toString('base64url')
    const headers: Record<string, string> = { [AUTH_HEADER.signature]: `${time}.${n}.${sig}` }
    if (digest !== EMPTY_DIGEST) headers[AUTH_HEADER.digest] = digest
    return headers
  }

  /**
   * Checks a request before any work is done for it: undefined if it is authentic, fresh and new
   * (it is then remembered, and the same signature is refused next time), else why not. The body,
   * read later, must still match `request.digest` (`bodyMatches`).
   */
  check(request: SignedRequest, header: string | string[] | undefined): AuthFailure | undefined {
    if (header === undefined) return 'missing'
    const m = typeof header === 'string' ? SIGNATURE_FORMAT.exec(header) : null
    if (m === null) return 'malformed'
    const [, time, nonce, sig] = m as unknown as [string, string, string, string]
    const at = Number(time)
    const now = this.#now()
    if (Math.abs(now - at) > this.maxSkewMs || at <= this.#floor) return 'stale'
    const given = Buffer.from(sig, 'base64url')
    // base64url's last character carries 2 unused bits: only the canonical spelling is accepted, or a
    // replay could pass as a new signature (the replay memory is keyed by the text).
    if (given.toString('base64url') !== sig) return 'malformed'
    let valid = false
    // Every key is tried (no early exit), each compare in constant time.
    for (const key of this.#keys) valid = timingSafeEqual(mac(key, request, time, nonce), given) || valid
    if (!valid) return 'bad-signature'
    if (this.#seen.has(sig)) return 'replayed'
    this.#seen.set(sig, at + this.maxSkewMs, { ttl: Math.max(1, at + this.maxSkewMs - now + 1) })
    return undefined
  }

  /** Signatures remembered now (for tests and stats). */
  get remembered(): number {
    return this.#seen.size
  }
}

/**
 * The headers that sign a request with no body to a peer, for a tool of your own: a CPU profile
 * (`debug/profile`), a signed health check. `fetch(url, { headers: signRequest({ secret }, 'GET', url) })`.
 * Each call signs once: the peer refuses the same headers a second time (a replay).
 */
export function signRequest(options: AuthOptions, method: string, url: string | URL): Record<string, string> {
  const target = new URL(url)
  // One signature: no replay memory to speak of.
  return new Auth({ ...options, maxReplayEntries: 1 }).sign(method, target.pathname + target.search, '')
}

/** Whether a body read after `check` is the one that was signed. */
export function bodyMatches(digest: string, body: Uint8Array): boolean {
  return sameDigest(digest, digestOf(body))
}

/** Whether two digests are equal, compared in constant time. */
export function sameDigest(claimed: string, actual: string): boolean {
  const a = Buffer.from(actual)
  const c = Buffer.from(claimed)
  return a.length === c.length && timingSafeEqual(a, c)
}

function mac(key: Buffer, r: SignedRequest, time: string, nonce: string): Buffer {
  // Newline-separated: none of the fields can hold a newline (HTTP forbids it in a path and a header).
  return createHmac('sha256', key).update(`peercache-v1\n${r.method}\n${r.path}\n${r.digest}\n${r.from}\n${time}\n${nonce}`).digest()
}

function secretsOf(options: AuthOptions): Buffer[] {
  if (options.secret !== undefined && options.secrets !== undefined)
    throw new InvalidOptionError('auth', 'give secret or secrets, not both')
  const list = options.secrets ?? (options.secret === undefined ? [] : [options.secret])
  if (!Array.isArray(list) || list.length === 0) throw new InvalidOptionError('auth.secret', 'a secret is required')
  return list.map((s, i) => {
    const name = options.secrets ? `auth.secrets[${i}]` : 'auth.secret'
    if (typeof s !== 'string' && !(s instanceof Uint8Array))
      throw new InvalidOptionError(name, `must be a string or bytes, got ${typeof s}`)
    const key = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s)
    if (key.length < MIN_SECRET_BYTES)
      throw new InvalidOptionError(name, `must be at least ${MIN_SECRET_BYTES} bytes (got ${key.length}); use 32 random bytes`)
    return key
  })
}

function bounded(option: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new InvalidOptionError(option, `must be an integer from ${min} to ${max}, got ${String(n)}`)
  return n
}
