// The client side of the peer protocol: one keep-alive undici Pool per peer, explicit timeouts
// (undici's defaults are minutes long), and errors sorted into "the origin failed" (LoadError,
// final) and "the peer could not answer" (PeerUnavailableError, try elsewhere).
import { Pool } from 'undici'
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

/** A value as a peer sent it. `bytes` owns its memory (safe to cache). */
export interface Fetched {
  bytes: Buffer
  expiresAt: number
  version: number
}

export class PeerClient {
  readonly #options: PeerClientOptions
  readonly #pools = new Map<string, Pool>()
  readonly #headers: Record<string, string>

  constructor(options: PeerClientOptions) {
    this.#options = options
    this.#headers = { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.from]: options.self }
  }

  /** GET a key from `peer`. Rejects with LoadError/InvalidValueError (final), PeerUnavailableError, or the signal's reason. */
  async get(peer: string, group: string, key: string, signal?: AbortSignal): Promise<Fetched> {
    const o = this.#options
    let res
    try {
      res = await this.#pool(peer).request({
        path: keyPath(o.basePath, group, key),
        method: 'GET',
        headers: this.#headers,
        signal,
        headersTimeout: o.fetchTimeoutMs,
        bodyTimeout: o.fetchTimeoutMs,
      })
    } catch (err) {
      throw this.#transportError(peer, err, signal)
    }
    const { statusCode, headers, body } = res
    let bytes: Buffer
    try {
      bytes = Buffer.from(await body.arrayBuffer())
    } catch (err) {
      throw this.#transportError(peer, err, signal)
    }
    if (statusCode === 200) {
      return { bytes, expiresAt: Number(headers[HEADER.expires] ?? 0) || 0, version: Number(headers[HEADER.version] ?? 0) || 0 }
    }
    const reason = headers[HEADER.error]
    const message = errorMessage(bytes)
    if (reason === 'load') throw new LoadError(group, key, message, { peer })
    if (reason === 'invalid-value') throw new InvalidValueError(group, key, `${message} (at ${peer})`)
    throw new PeerUnavailableError(peer, `HTTP ${statusCode}${reason ? ` ${String(reason)}` : ''}: ${message}`)
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

  #transportError(peer: string, err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason
    const e = err as { code?: string; message?: string }
    return new PeerUnavailableError(peer, `${e?.code ?? 'error'}: ${e?.message ?? String(err)}`, { cause: err })
  }
}

function errorMessage(body: Buffer): string {
  const text = body.toString('utf8')
  try {
    const parsed = JSON.parse(text) as { message?: unknown }
    if (typeof parsed.message === 'string') return parsed.message
  } catch {
    // not JSON: another server answered; show what it said
  }
  return text.slice(0, 200)
}
