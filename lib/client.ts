// The client side of the peer protocol: one keep-alive undici Pool per peer, explicit timeouts
// (undici's defaults are minutes long), and errors sorted into "the origin failed" (LoadError,
// final) and "the peer could not answer" (PeerUnavailableError, try elsewhere).
// Over 300 lines: the batching of gets and the other requests (PUT, DELETE, leave and resync, lock
// calls, publish) share one set of pools, signatures and error rules, and read best side by side.
import { Pool } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import type { Auth } from './auth.js'
import { ConflictError, InvalidValueError, LoadError, LoadTimeoutError, PeerUnavailableError } from './errors.js'
import { type BatchItem, type Frame, FrameParser, encodeBatch } from './frames.js'
import type { ClientTlsOptions } from './options.js'
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
import { type FetchTraceContext, fetchChannel } from './tracing.js'
import { plausibleVersion } from './versions.js'

/** How many times a key answered `retry` (a spent batch budget) is asked for again before giving up on that peer. */
const MAX_RETRIES = 8

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
  /** A batch's answer went silent for peerTimeoutMs after its headers. */
  onStall?: (peer: string) => void
  /** Signs every request when given. */
  auth?: Auth
  /** What to trust and present on https:// peers. */
  tls?: ClientTlsOptions
  /** How far ahead of this clock a peer's version may be, in ms: past it the answer is not believed. */
  maxVersionAheadMs: number
}

/** A get waiting for its batch to be sent. */
interface Queued extends BatchItem {
  resolve(f: WireEntry | undefined): void
  reject(err: unknown): void
  settled: boolean
  /** Its peercache:fetch context, when a tracer listens. */
  trace: FetchTraceContext | undefined
  /** Times it was answered `retry` (the owner's batch budget was spent). */
  retries: number
}

interface Answer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export class PeerClient implements PeerTransport {
  readonly #options: PeerClientOptions
  readonly #pools = new Map<string, Pool>()
  /** Per peer, for requests made while batches hold every connection of its pool: no bound (see #pool). */
  readonly #overflow = new Map<string, Pool>()
  readonly #headers: Record<string, string>
  readonly #batchHeaders: Record<string, string>
  /** Gets bound for each peer, waiting for their batch to be sent. */
  readonly #queues = new Map<string, Queued[]>()
  /** Batches under way, per peer. */
  readonly #running = new Map<string, Set<AbortController>>()
  /** Batches sent so far: the number of the next one, for tracing. */
  #batches = 0
  #closed = false

  constructor(options: PeerClientOptions) {
    this.#options = options
    this.#headers = { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.from]: options.self }
    this.#batchHeaders = {
      ...this.#headers,
      'content-type': 'application/x-peercache-batch',
      // Well within peerTimeoutMs: a batch waiting on a slow origin never goes silent that long.
      [HEADER.heartbeat]: String(Math.max(1, Math.floor(options.peerTimeoutMs / 4))),
    }
  }

  /**
   * Fetches a key. A get goes out at once when no batch to that peer is in flight; else gets for the
   * same peer gather until the next event-loop turn and travel together in one batched request. Rejects with LoadError/InvalidValueError (final),
   * PeerUnavailableError.
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
      this.#queue(peer, { group, key, peek, resolve, reject, settled: false, trace, retries: 0 })
    })
  }

  /**
   * Send at once, coalesce only under load (as Nagle's algorithm and ioredis's auto-pipelining do):
   * with no batch in flight to the peer, the queue goes out at the end of this microtask run (gets
   * made together, as by Promise.all, still share it), so one get at a time waits for no turn of the
   * event loop. While a batch is in flight, gets gather until the loop's next turn and share a request.
   */
  #queue(peer: string, item: Queued): void {
    let queue = this.#queues.get(peer)
    if (queue === undefined) {
      const q: Queued[] = (queue = [])
      this.#queues.set(peer, q)
      if (this.#running.has(peer)) setImmediate(() => this.#flush(peer, q))
      else queueMicrotask(() => this.#flush(peer, q))
    }
    queue.push(item)
    if (queue.length >= this.#options.maxBatchKeys) this.#flush(peer, queue)
  }

  /** A key the owner answered `retry`: it goes in the next batch to that peer (this batch forgets it). */
  #retry(peer: string, q: Queued): void {
    q.settled = true
    if (q.retries >= MAX_RETRIES) q.reject(new PeerUnavailableError(peer, `still over the batch budget after ${MAX_RETRIES} tries`))
    else this.#queue(peer, { ...q, settled: false, retries: q.retries + 1 })
  }

  /** The headers of a request, signed when auth is on. */
  #signed(base: Record<string, string>, method: string, path: string, body?: Uint8Array): Record<string, string> {
    const auth = this.#options.auth
    return auth ? { ...base, ...auth.sign(method, path, this.#options.self, body) } : base
  }

  #flush(peer: string, queue: Queued[]): void {
    if (this.#queues.get(peer) !== queue) return // sent already (it filled up)
    this.#queues.delete(peer)
    void this.#getBatch(peer, queue)
  }

  /**
   * One request for one or many keys; each value settles its caller as soon as its frame arrives.
   * The owner sends headers at once, so the headers timeout (peerTimeoutMs) tells a hung peer
   * quickly, while fetchTimeoutMs between values leaves the origin time to answer.
   */
  async #getBatch(peer: string, items: Queued[]): Promise<void> {
    const o = this.#options
    const batch = ++this.#batches
    for (const q of items) if (q.trace !== undefined) q.trace.batch = batch
    // Aborted when the peer misses peerTimeoutMs before its headers (undici's own timeouts tick at
    // ~1 s), or when health decides the peer is down (abortPeer): the waiters move on to a replica.
    const ctl = new AbortController()
    let running = this.#running.get(peer)
    if (running === undefined) this.#running.set(peer, (running = new Set()))
    running.add(ctl)
    const done = () => {
      running.delete(ctl)
      if (running.size === 0 && this.#running.get(peer) === running) this.#running.delete(peer)
    }
    let timer = setTimeout(() => ctl.abort(new PeerUnavailableError(peer, `no answer within ${o.peerTimeoutMs} ms`)), o.peerTimeoutMs)
    let slow: NodeJS.Timeout | undefined
    try {
      const path = `${o.basePath}batch`
      const body = encodeBatch(items)
      const res = await this.#pool(peer, running.size - 1).request({
        path,
        method: 'POST',
        headers: this.#signed(this.#batchHeaders, 'POST', path, body),
        body,
        signal: ctl.signal,
        // A backstop only: the value timer below decides (heartbeats keep undici's timer from firing).
        bodyTimeout: o.fetchTimeoutMs + o.peerTimeoutMs,
      })
      clearTimeout(timer)
      if (res.statusCode !== 200) {
        const body = Buffer.from(await res.body.arrayBuffer())
        const err = answerError(peer, items[0]!.group, items[0]!.key, { statusCode: res.statusCode, headers: res.headers, body })
        throw err instanceof PeerUnavailableError ? err : new PeerUnavailableError(peer, err.message)
      }
      // The owner sends a heartbeat frame every peerTimeoutMs / 4 while its origin loads, so silence
      // this long is a peer that hung mid-answer (or an older one): ask health to check it (a probe),
      // which aborts this batch if it is down.
      const stalled = () => o.onStall?.(peer)
      timer = setTimeout(stalled, o.peerTimeoutMs)
      // Liveness is not load time: an owner that is alive (it spoke within peerTimeoutMs: heartbeats)
      // but whose origin is slow gets fetchTimeoutMs between values; past it the keys still waiting
      // fail with LoadTimeoutError (the origin's fault, not the peer's: nothing is loaded again here,
      // the owner stays up). A silent one is unavailable: its keys go to a replica or load here.
      let heardAt = Date.now()
      slow = setTimeout(() => {
        const alive = Date.now() - heardAt < o.peerTimeoutMs
        for (const q of items) {
          const message = `no value within fetchTimeoutMs (${o.fetchTimeoutMs} ms)`
          if (!q.settled)
            settle(q, undefined, alive ? new LoadTimeoutError(q.group, q.key, message, { peer }) : new PeerUnavailableError(peer, message))
        }
        ctl.abort(new PeerUnavailableError(peer, 'gave up on the values still loading'))
      }, o.fetchTimeoutMs)
      const parser = new FrameParser()
      const answer = res.body
      let unanswered = items.length
      await new Promise<void>((resolve, reject) => {
        answer.on('data', (chunk: Buffer) => {
          timer.refresh()
          heardAt = Date.now()
          for (const frame of parser.push(chunk)) {
            const item = items[frame.index]
            if (item === undefined || item.settled) continue
            slow?.refresh()
            if (frame.status === 'retry') this.#retry(peer, item)
            else settleFrame(peer, item, frame, o.maxVersionAheadMs)
            unanswered--
          }
          // Every key has its answer: the batch no longer counts as in flight, so the callers' next
          // gets (made as these settle) go out at once rather than wait for the end of the stream.
          if (unanswered === 0) done()
        })
        answer.once('end', resolve)
        answer.once('error', reject)
      })
      if (items.some((q) => !q.settled)) throw new PeerUnavailableError(peer, 'the batch answer ended before every key was answered')
    } catch (err) {
      const e = err instanceof PeerUnavailableError ? err : ctl.signal.aborted ? ctl.signal.reason : transportError(peer, err)
      for (const q of items) settle(q, undefined, e)
    } finally {
      clearTimeout(timer)
      clearTimeout(slow)
      done()
    }
  }

  /** Fails every batch under way to `peer` (it is down): their gets go on to a replica or load locally. */
  abortPeer(peer: string, reason: string): void {
    for (const ctl of this.#running.get(peer) ?? []) ctl.abort(new PeerUnavailableError(peer, reason))
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

  /** Drops the pools of peers that left. */
  retain(peers: Iterable<string>): void {
    const keep = new Set(peers)
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
    await Promise.allSettled(pools.map((p) => p.close()))
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
  #pool(peer: string, batches = this.#running.get(peer)?.size ?? 0): Pool {
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

function transportError(peer: string, err: unknown): PeerUnavailableError {
  const e = err as { code?: string; message?: string }
  return new PeerUnavailableError(peer, `${e?.code ?? 'error'}: ${e?.message ?? String(err)}`, { cause: err })
}

/** Settles a queued get: with its value (undefined: a peek that missed), or with `err` when one is given. */
function settle(q: Queued, value: WireEntry | undefined, err?: unknown): void {
  if (q.settled) return
  q.settled = true
  if (err === undefined) q.resolve(value)
  else q.reject(err)
}

function settleFrame(peer: string, q: Queued, f: Frame, maxVersionAheadMs: number): void {
  if (f.status === 'ok' && !plausibleVersion(f.version, maxVersionAheadMs))
    settle(q, undefined, new PeerUnavailableError(peer, `answered with an implausible version ${f.version}`))
  else if (f.status === 'ok') settle(q, { bytes: f.payload, expiresAt: f.expiresAt, version: f.version })
  else if (f.status === 'absent' && !plausibleVersion(f.version, maxVersionAheadMs))
    settle(q, undefined, new PeerUnavailableError(peer, `answered with an implausible version ${f.version}`))
  else if (f.status === 'absent') settle(q, { bytes: f.payload, expiresAt: f.expiresAt, version: f.version, absent: true })
  else if (f.status === 'miss') settle(q, undefined)
  else settle(q, undefined, frameError(peer, q, f))
}

/** The error an error frame stands for: the origin's (final) or the peer's (try elsewhere). */
function frameError(peer: string, q: Queued, f: Frame): Error {
  const message = f.payload.toString('utf8')
  if (f.status === 'load') return new LoadError(q.group, q.key, message, { peer })
  if (f.status === 'load-timeout') return new LoadTimeoutError(q.group, q.key, message, { peer })
  if (f.status === 'invalid-value') return new InvalidValueError(q.group, q.key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `${f.status}: ${message}`, { reason: f.status })
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
  if (reason === 'load-timeout') return new LoadTimeoutError(group, key, message, { peer })
  if (reason === 'invalid-value') return new InvalidValueError(group, key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `HTTP ${a.statusCode}${reason ? ` ${String(reason)}` : ''}: ${message}`, {
    reason: typeof reason === 'string' ? reason : `http-${a.statusCode}`,
  })
}
