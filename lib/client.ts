// The client side of the peer protocol: one keep-alive undici Pool per peer, explicit timeouts
// (undici's defaults are minutes long), and errors sorted into "the origin failed" (LoadError,
// final) and "the peer could not answer" (PeerUnavailableError, try elsewhere).
import { Pool } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import { InvalidValueError, LoadError, PeerUnavailableError } from './errors.js'
import { HEADER, PROTOCOL_VERSION, keyPath } from './protocol.js'

export interface PeerClientOptions {
  self: string
  basePath: string
  connectTimeoutMs: number
  fetchTimeoutMs: number
  connections: number
  keepAliveTimeoutMs: number
}

/** A value with the owner's metadata. `bytes` owns its memory (safe to cache). */
export interface Fetched {
  bytes: Buffer
  expiresAt: number
  version: number
}

/** What a PUT carries besides the bytes. */
export type PutMeta =
  | { replica: false; ttlMs: number | undefined } // a set(): the receiver is the owner and decides version and expiry
  | { replica: true; version: number; expiresAt: number } // the owner copying a value to a replica

/** The operations a group needs from its peers (the HTTP client here; anything else in tests). */
export interface PeerTransport {
  get(peer: string, group: string, key: string, signal?: AbortSignal): Promise<Fetched>
  put(peer: string, group: string, key: string, bytes: Uint8Array, meta: PutMeta): Promise<{ version: number; expiresAt: number }>
  delete(peer: string, group: string, key: string, before?: number): Promise<void>
}

interface Answer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export class PeerClient implements PeerTransport {
  readonly #options: PeerClientOptions
  readonly #pools = new Map<string, Pool>()
  readonly #headers: Record<string, string>

  constructor(options: PeerClientOptions) {
    this.#options = options
    this.#headers = { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.from]: options.self }
  }

  /** GET a key. Rejects with LoadError/InvalidValueError (final), PeerUnavailableError, or the signal's reason. */
  async get(peer: string, group: string, key: string, signal?: AbortSignal): Promise<Fetched> {
    const a = await this.#request(peer, 'GET', group, key, this.#headers, undefined, signal)
    if (a.statusCode !== 200) throw answerError(peer, group, key, a)
    return { bytes: a.body, ...meta(a.headers) }
  }

  /** PUT a value: a set at its owner, or the owner's copy to a replica. Resolves with what the receiver stored. */
  async put(peer: string, group: string, key: string, bytes: Uint8Array, m: PutMeta): Promise<{ version: number; expiresAt: number }> {
    const headers: Record<string, string> = { ...this.#headers, 'content-type': 'application/octet-stream' }
    if (m.replica) {
      headers[HEADER.replica] = '1'
      headers[HEADER.version] = String(m.version)
      if (m.expiresAt !== 0) headers[HEADER.expires] = String(m.expiresAt)
    } else if (m.ttlMs !== undefined) {
      headers[HEADER.ttl] = String(m.ttlMs)
    }
    const a = await this.#request(peer, 'PUT', group, key, headers, bytes)
    if (a.statusCode !== 204 && a.statusCode !== 200) throw answerError(peer, group, key, a)
    return meta(a.headers)
  }

  /** DELETE: the peer drops its copies of `key` (older than `before`, when given) and refuses older writes. */
  async delete(peer: string, group: string, key: string, before?: number): Promise<void> {
    const headers = before === undefined ? this.#headers : { ...this.#headers, [HEADER.version]: String(before) }
    const a = await this.#request(peer, 'DELETE', group, key, headers)
    if (a.statusCode !== 204 && a.statusCode !== 200) throw answerError(peer, group, key, a)
  }

  /** Drops the pools of peers that left. */
  retain(peers: Iterable<string>): void {
    const keep = new Set(peers)
    for (const [peer, pool] of this.#pools) {
      if (!keep.has(peer)) {
        this.#pools.delete(peer)
        pool.close().catch(() => pool.destroy())
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.close()))
  }

  async #request(peer: string, method: 'GET' | 'PUT' | 'DELETE', group: string, key: string, headers: Record<string, string>, body?: Uint8Array, signal?: AbortSignal): Promise<Answer> {
    try {
      const res = await this.#pool(peer).request({ path: keyPath(this.#options.basePath, group, key), method, headers, body, signal })
      // arrayBuffer() concatenates into a fresh buffer: the value owns its memory.
      return { statusCode: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      const e = err as { code?: string; message?: string }
      throw new PeerUnavailableError(peer, `${e?.code ?? 'error'}: ${e?.message ?? String(err)}`, { cause: err })
    }
  }

  #pool(peer: string): Pool {
    let pool = this.#pools.get(peer)
    if (pool === undefined) {
      const o = this.#options
      pool = new Pool(peer, {
        connections: o.connections,
        connectTimeout: o.connectTimeoutMs,
        headersTimeout: o.fetchTimeoutMs,
        bodyTimeout: o.fetchTimeoutMs,
        keepAliveTimeout: o.keepAliveTimeoutMs,
      })
      this.#pools.set(peer, pool)
    }
    return pool
  }
}

function meta(headers: IncomingHttpHeaders): { expiresAt: number; version: number } {
  return { expiresAt: Number(headers[HEADER.expires] ?? 0) || 0, version: Number(headers[HEADER.version] ?? 0) || 0 }
}

/** The error an answer other than success stands for. */
function answerError(peer: string, group: string, key: string, a: Answer): Error {
  const reason = a.headers[HEADER.error]
  let message = a.body.toString('utf8').slice(0, 500)
  try {
    const parsed = JSON.parse(message) as { message?: unknown }
    if (typeof parsed.message === 'string') message = parsed.message
  } catch {
    // not JSON: another server answered; show what it said
  }
  if (reason === 'load') return new LoadError(group, key, message, { peer })
  if (reason === 'invalid-value') return new InvalidValueError(group, key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `HTTP ${a.statusCode}${reason ? ` ${String(reason)}` : ''}: ${message}`)
}
