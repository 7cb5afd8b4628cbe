// The client side of the peer protocol: one keep-alive undici Pool per peer, explicit timeouts
// (undici's defaults are minutes long), and errors sorted into "the origin failed" (LoadError,
// final) and "the peer could not answer" (PeerUnavailableError, try elsewhere).
// Gets travel on a peer stream (stream-client.ts) or in batches (batch-client.ts); the other
// requests (PUT, DELETE, leave and resync, lock calls, publish) are one HTTP request each.
// Over 300 lines: those requests share one set of pools, signatures and error rules, read best together.
import { Pool } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import { type Answer, answerError, transportError } from './answer-errors.js'
import type { Auth } from './auth.js'
import { BatchClient } from './batch-client.js'
import { ConflictError, PeerUnavailableError } from './errors.js'
import type { ClientTlsOptions } from './options.js'
import type { Queued } from './pending-get.js'
import {
  type ChangeNote,
  HEADER,
  LOCK_HEARTBEAT_MS,
  PROTOCOL_VERSION,
  type PeerTransport,
  type PutMeta,
  type Stored,
  type WireEntry,
  keyPath,
} from './protocol.js'
import { StreamClient } from './stream-client.js'
import { type FetchTraceContext, fetchChannel } from './tracing.js'
import { plausibleVersion } from './versions.js'

/** After a peer refused the stream upgrade, how long its gets go by batch before the upgrade is tried again, in ms. */
const RETRY_UPGRADE_MS = 60_000

export interface PeerClientOptions {
  self: string
  basePath: string
  connectTimeoutMs: number
  /** Until a peer starts answering (undici headersTimeout), and for replica copies (PUT) and drops (DELETE). */
  peerTimeoutMs: number
  /** Until the next value arrives once the answer started (LoadTimeoutError from a live owner), and for a set (PUT) at its owner. */
  fetchTimeoutMs: number
  connections: number
  keepAliveTimeoutMs: number
  /** HTTP/1.1 requests in flight per connection. */
  pipelining: number
  /** Most keys in one batched fetch; 1 turns batching off. */
  maxBatchKeys: number
  /** Gets travel on a persistent stream per peer (HTTP/1.1 Upgrade), batches only where a peer refuses it. */
  peerStreams: boolean
  /** A batch's answer went silent for peerTimeoutMs after its headers. */
  onStall?: (peer: string) => void
  /** Signs every request when given. */
  auth?: Auth
  /** What to trust and present on https:// peers. */
  tls?: ClientTlsOptions
  /** How far ahead of this clock a peer's version may be, in ms: past it the answer is not believed. */
  maxVersionAheadMs: number
}

export class PeerClient implements PeerTransport {
  readonly #options: PeerClientOptions
  readonly #pools = new Map<string, Pool>()
  /** Per peer, for requests made while batches hold every connection of its pool: no bound (see #pool). */
  readonly #overflow = new Map<string, Pool>()
  readonly #headers: Record<string, string>
  readonly #batches: BatchClient
  /** Undefined when peerStreams is off. */
  readonly #streams: StreamClient | undefined
  #closed = false

  constructor(options: PeerClientOptions) {
    this.#options = options
    this.#headers = { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.from]: options.self }
    this.#batches = new BatchClient(options, {
      pool: (peer, batches) => this.#pool(peer, batches),
      signed: (base, method, path, body) => this.#signed(base, method, path, body),
    })
    this.#streams = options.peerStreams
      ? new StreamClient({ ...options, retryUpgradeMs: RETRY_UPGRADE_MS }, (peer, item) => this.#batches.queue(peer, item))
      : undefined
  }

  /**
   * Fetches a key: on the peer's stream, at once; by batch where there is no stream (batch-client.ts
   * says when a batch goes). Rejects with LoadError/InvalidValueError (final), PeerUnavailableError.
   */
  get(peer: string, group: string, key: string): Promise<WireEntry> {
    return this.#enqueue(peer, group, key, false) as Promise<WireEntry>
  }

  peek(peer: string, group: string, key: string): Promise<WireEntry | undefined> {
    return this.#enqueue(peer, group, key, true)
  }

  /** Queues a key for the peer's next batch; traced (one context per key) only when a tracer listens. */
  #enqueue(peer: string, group: string, key: string, peek: boolean): Promise<WireEntry | undefined> {
    if (!fetchChannel.hasSubscribers) return this.#wait(peer, group, key, peek, undefined)
    const trace: FetchTraceContext = { self: this.#options.self, peer, group, key, peek, batch: 0 }
    return fetchChannel.tracePromise(() => this.#wait(peer, group, key, peek, trace), trace)
  }

  // Callers leave through their flight (Flight's waiters), not here: a queued get has no abort
  // listener of its own, which keeps a remote hit to a few allocations.
  #wait(peer: string, group: string, key: string, peek: boolean, trace: FetchTraceContext | undefined): Promise<WireEntry | undefined> {
    return new Promise<WireEntry | undefined>((resolve, reject) => {
      const item: Queued = { group, key, peek, resolve, reject, settled: false, trace, retries: 0 }
      if (this.#streams) this.#streams.send(peer, item)
      else this.#batches.queue(peer, item)
    })
  }

  /** The headers of a request, signed when auth is on. */
  #signed(base: Record<string, string>, method: string, path: string, body?: Uint8Array): Record<string, string> {
    const auth = this.#options.auth
    return auth ? { ...base, ...auth.sign(method, path, this.#options.self, body) } : base
  }

  /** Fails every batch and stream under way to `peer` (it is down): their gets go on to a replica or load locally. */
  abortPeer(peer: string, reason: string): void {
    this.#batches.abortPeer(peer, reason)
    this.#streams?.abortPeer(peer, reason)
  }

  /** PUT a value: a set at its owner, or the owner's copy to a replica. Resolves with what the receiver stored. */
  async put(peer: string, group: string, key: string, bytes: Uint8Array, m: PutMeta): Promise<Stored> {
    const headers: Record<string, string> = { ...this.#headers, 'content-type': 'application/octet-stream' }
    if (m.replica) {
      headers[HEADER.replica] = '1'
      headers[HEADER.version] = String(m.version)
      if (m.expiresAt !== 0) headers[HEADER.expires] = String(m.expiresAt)
    } else {
      if (m.ttlMs !== undefined) headers[HEADER.ttl] = String(m.ttlMs)
      if (m.condition) headers[HEADER.ifVersion] = 'ifAbsent' in m.condition ? 'absent' : String(m.condition.ifVersion)
    }
    if (m.absent) headers[HEADER.absent] = '1'
    if (m.note) noteHeaders(headers, m.note)
    // A replica only stores: it answers within peerTimeoutMs or is taken for down. A set waits for
    // the owner, which may itself wait up to peerTimeoutMs for its replicas.
    const timeout = m.replica ? this.#options.peerTimeoutMs : this.#options.fetchTimeoutMs
    const a = await this.#request(peer, 'PUT', group, key, headers, timeout, bytes)
    if (a.statusCode === 409 && a.headers[HEADER.error] === 'conflict' && !m.replica && m.condition) {
      const current = a.headers[HEADER.version]
      throw new ConflictError(group, key, typeof current === 'string' ? this.#meta(peer, a.headers).version : undefined, m.condition)
    }
    if (a.statusCode !== 204 && a.statusCode !== 200) throw answerError(peer, group, key, a)
    const unreachable = a.headers[HEADER.unreachable]
    return { ...this.#meta(peer, a.headers), unreachable: typeof unreachable === 'string' && unreachable ? unreachable.split(',') : [] }
  }

  /** DELETE: the peer drops its copies of `key` (older than `before`, when given) and refuses older writes. Resolves with its tombstone version. */
  async delete(peer: string, group: string, key: string, before?: number, note?: ChangeNote): Promise<number> {
    let headers = before === undefined ? this.#headers : { ...this.#headers, [HEADER.version]: String(before) }
    if (note) headers = noteHeaders({ ...headers }, note)
    const a = await this.#request(peer, 'DELETE', group, key, headers, this.#options.peerTimeoutMs)
    if (a.statusCode !== 204 && a.statusCode !== 200) throw answerError(peer, group, key, a)
    return this.#meta(peer, a.headers).version
  }

  /** The version and expiry a peer answered with; a version that cannot be right is not believed. */
  #meta(peer: string, headers: IncomingHttpHeaders): { expiresAt: number; version: number } {
    const m = { expiresAt: Number(headers[HEADER.expires] ?? 0) || 0, version: Number(headers[HEADER.version] ?? 0) || 0 }
    if (!plausibleVersion(m.version, this.#options.maxVersionAheadMs))
      throw new PeerUnavailableError(peer, `answered with an implausible version ${String(headers[HEADER.version])}`)
    return m
  }

  /** DELETE `{basePath}{group}/`: the peer drops every entry of the group and refuses versions up to `epoch`. Resolves with its cleared line. */
  async clear(peer: string, group: string, epoch: number): Promise<number> {
    const headers = { ...this.#headers, [HEADER.version]: String(epoch) }
    const a = await this.#request(peer, 'DELETE', group, '', headers, this.#options.peerTimeoutMs)
    if (a.statusCode !== 204 && a.statusCode !== 200) throw answerError(peer, group, '', a)
    // A clear's line may be its epoch, up to a minute ahead (server.ts): not held to the versions' skew.
    return Number(a.headers[HEADER.version] ?? 0) || 0
  }

  /** Tells `peer` that this one is leaving. */
  leave(peer: string): Promise<void> {
    return this.#post(peer, 'leave')
  }

  /** Tells `peer` to drop every value it holds: it missed writes that hints could not keep. */
  resync(peer: string): Promise<void> {
    return this.#post(peer, 'resync')
  }

  async #post(peer: string, what: 'leave' | 'resync'): Promise<void> {
    const path = `${this.#options.basePath}${what}`
    const res = await this.#pool(peer).request({
      path,
      method: 'POST',
      headers: this.#signed(this.#headers, 'POST', path),
      headersTimeout: this.#options.peerTimeoutMs,
    })
    await res.body.dump()
  }

  /**
   * POST `{basePath}lock-{op}` with a JSON body (lock-routes.ts); resolves with the answer's JSON line.
   * An acquire's answer is a long-poll: blank lines until the grant, so the body may take as long as
   * the wait, but never three heartbeats without a byte.
   */
  async lockCall(peer: string, op: 'acquire' | 'release' | 'record', body: object, signal?: AbortSignal): Promise<unknown> {
    const path = `${this.#options.basePath}lock-${op}`
    const bytes = Buffer.from(JSON.stringify(body))
    const headers = { ...this.#headers, 'content-type': 'application/json' }
    const bodyTimeout = Math.max(this.#options.fetchTimeoutMs, 3 * LOCK_HEARTBEAT_MS)
    const a = await this.#postBody(peer, path, headers, bytes, { signal, bodyTimeout })
    if (a.statusCode !== 200) throw answerError(peer, '(locks)', '', a)
    try {
      return JSON.parse(a.body.toString('utf8').trim()) as unknown
    } catch {
      throw new PeerUnavailableError(peer, `a lock answer that is not JSON: ${a.body.toString('utf8').slice(0, 200)}`, {
        reason: 'bad-answer',
      })
    }
  }

  /** POST {basePath}publish: a pub/sub message for `peer`'s subscribers of `channel`. */
  async publish(peer: string, channel: string, body: Uint8Array, json: boolean): Promise<void> {
    const path = `${this.#options.basePath}publish`
    const headers = {
      ...this.#headers,
      [HEADER.channel]: encodeURIComponent(channel),
      'content-type': json ? 'application/json' : 'application/octet-stream',
    }
    const a = await this.#postBody(peer, path, headers, body, {})
    if (a.statusCode !== 204) throw answerError(peer, '(publish)', channel, a)
  }

  /** A signed POST with a body, its answer read whole; a transport failure is a PeerUnavailableError. */
  async #postBody(
    peer: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    options: { signal?: AbortSignal; bodyTimeout?: number },
  ): Promise<Answer> {
    try {
      const res = await this.#pool(peer).request({
        path,
        method: 'POST',
        headers: this.#signed(headers, 'POST', path, body),
        body,
        headersTimeout: this.#options.peerTimeoutMs,
        ...options,
      })
      return { statusCode: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
    } catch (err) {
      throw transportError(peer, err)
    }
  }

  /** Drops the pools and streams of peers that left. */
  retain(peers: Iterable<string>): void {
    const keep = new Set(peers)
    this.#streams?.retain(keep)
    for (const pools of [this.#pools, this.#overflow]) {
      for (const [peer, pool] of pools) {
        if (keep.has(peer)) continue
        pools.delete(peer)
        pool.close().catch(() => pool.destroy())
      }
    }
  }

  /** Closes every connection; from now on nothing is sent (a late request fails at once). */
  async close(): Promise<void> {
    this.#closed = true
    const pools = [...this.#pools.values(), ...this.#overflow.values()]
    this.#pools.clear()
    this.#overflow.clear()
    await Promise.allSettled([...pools.map((p) => p.close()), this.#streams?.close()])
  }

  async #request(
    peer: string,
    method: 'PUT' | 'DELETE',
    group: string,
    key: string,
    headers: Record<string, string>,
    timeoutMs: number,
    body?: Uint8Array,
  ): Promise<Answer> {
    try {
      const path = keyPath(this.#options.basePath, group, key)
      const res = await this.#pool(peer).request({
        path,
        method,
        headers: this.#signed(headers, method, path, body),
        body,
        headersTimeout: timeoutMs,
      })
      // arrayBuffer() concatenates into a fresh buffer: the value owns its memory.
      return { statusCode: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
    } catch (err) {
      throw transportError(peer, err)
    }
  }

  /**
   * The pool for a request to `peer`. Batches that wait on a slow origin hold their connections; once
   * `batches` (those under way, this one aside) hold all of them, a request goes through an overflow
   * pool with connections of its own instead of queueing behind loads: queued, a cached key would
   * wait on them, and a batch would miss peerTimeoutMs before it was even sent (a live owner taken
   * for dead, and its keys loaded again here).
   */
  #pool(peer: string, batches = this.#batches.running(peer)): Pool {
    const overflow = batches >= this.#options.connections
    const pools = overflow ? this.#overflow : this.#pools
    let pool = pools.get(peer)
    if (pool === undefined) {
      if (this.#closed) throw new PeerUnavailableError(peer, 'this peer is closed: nothing more is sent', { reason: 'closed' })
      const o = this.#options
      pool = new Pool(peer, {
        // undici: null is no bound. Bounded all the same by the gets waiting (maxBatchKeys a connection).
        connections: overflow ? null : o.connections,
        connect: { timeout: o.connectTimeoutMs, ...o.tls },
        headersTimeout: o.peerTimeoutMs,
        bodyTimeout: o.fetchTimeoutMs,
        keepAliveTimeout: o.keepAliveTimeoutMs,
        // A server's Keep-Alive hint (listen()'s says timeout=10) replaces keepAliveTimeout in
        // undici; capped here, the option holds whatever the server says (a shorter hint still wins).
        keepAliveMaxTimeout: o.keepAliveTimeoutMs,
        pipelining: o.pipelining,
      })
      pools.set(peer, pool)
    }
    return pool
  }
}

/** The headers of a write that is part of a set or remove (HEADER.change). */
function noteHeaders(headers: Record<string, string>, note: ChangeNote): Record<string, string> {
  headers[HEADER.change] = note.kind
  headers[HEADER.origin] = note.origin
  if (note.expiresAt) headers[HEADER.expires] = String(note.expiresAt)
  return headers
}
