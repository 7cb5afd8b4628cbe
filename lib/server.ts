// The server side of the peer protocol: a node:http request listener. A request that comes from a
// peer is answered from this process's caches or its own loader, never forwarded again, so two
// peers that disagree about an owner during a membership change cannot bounce a key between them.
import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { InvalidKeyError, InvalidValueError, LoadError, LoadTimeoutError } from './errors.js'
import { type BatchItem, decodeBatch, encodeFrame } from './frames.js'
import { type ErrorReason, HEADER, MAX_BATCH_KEYS, PROTOCOL_VERSION, type PutMeta, type ServedGroup, type WireEntry } from './protocol.js'
import { versionHeader } from './versions.js'

export interface HandlerOptions {
  basePath: string
  group(name: string): ServedGroup | undefined
  closing(): boolean
  /** A peer announced that it is leaving (POST {basePath}leave, from its x-peercache-from URL). */
  left(peer: string): void
  /** A peer says this one missed writes it could not replay (POST {basePath}resync): drop every value held. */
  resync(peer: string): void
}

/** A node:http request listener; `next` (Express/Connect style) gets requests outside the base path. */
export type Handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

/** Limit of a batch request's body, in bytes (its keys are limited by MAX_BATCH_KEYS). */
const MAX_BATCH_BODY_BYTES = 8 << 20
/**
 * How far ahead of this peer's clock a clear's epoch may be, in ms: the clocks' skew. An epoch is
 * checked because every version up to it is refused afterwards: one far in the future would empty
 * the group for good.
 */
const CLEAR_MAX_AHEAD_MS = 60_000
/** Values at least this large are written as they are rather than copied into one buffer. */
const LARGE_PART_BYTES = 4096

const STATUS: Record<ErrorReason, number> = {
  'bad-request': 400,
  protocol: 400,
  'unknown-group': 404,
  load: 500,
  'invalid-value': 500,
  closing: 503,
  internal: 500,
  'load-timeout': 504,
}

export function createHandler(options: HandlerOptions): Handler {
  const { basePath } = options
  const route = routeWith(options)
  return (req, res, next) => {
    if (!(req.url ?? '').startsWith(basePath)) {
      if (next) return next()
      return fail(res, 'bad-request', `not a peercache path (expected ${basePath}…)`, 404)
    }
    // A bad request must never throw out of the listener: that would crash the process.
    try {
      route(req, res)
    } catch (err) {
      fail(res, ...reasonOf(err))
    }
  }
}

function routeWith(options: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { basePath } = options
  return (req, res) => {
    const url = req.url ?? ''
    // While closing, every answer ends its connection: a peer probing us every few hundred ms
    // would otherwise keep a keep-alive socket busy forever and server.close() would never finish.
    if (options.closing()) res.setHeader('connection', 'close')
    const version = req.headers[HEADER.protocol]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      return fail(res, 'protocol', `this peer speaks protocol ${PROTOCOL_VERSION}, the request ${String(version)}`)
    }
    const q = url.indexOf('?', basePath.length)
    const parts = url.slice(basePath.length, q === -1 ? undefined : q).split('/')
    if (parts.length === 1 && parts[0] === 'health') return answerHealth(res, options)
    if (parts.length === 1 && (parts[0] === 'leave' || parts[0] === 'resync') && req.method === 'POST') {
      const from = req.headers[HEADER.from]
      if (typeof from !== 'string') return fail(res, 'bad-request', `${parts[0]} needs ${HEADER.from}`)
      if (parts[0] === 'leave') options.left(from)
      else options.resync(from)
      res.statusCode = 204
      return void res.end()
    }
    if (parts.length === 1 && parts[0] === 'batch' && req.method === 'POST') {
      if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
      return void answerBatch(options, req, res)
    }
    if (parts.length !== 2) return fail(res, 'bad-request', 'expected {basePath}{group}/{key}')
    if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
    const [groupName, encodedKey] = parts as [string, string]
    const group = options.group(groupName)
    if (group === undefined) return fail(res, 'unknown-group', `no group "${groupName}" on this peer`)
    let key: string
    try {
      key = decodeURIComponent(encodedKey)
    } catch {
      return fail(res, 'bad-request', 'the key is not valid percent-encoded UTF-8')
    }
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return void answerGet(group, key, req, res)
      case 'PUT':
        return void answerPut(group, key, req, res)
      case 'DELETE': {
        if (key === '') return answerClear(group, req, res)
        const before = optionalNumber(req.headers[HEADER.version])
        if (before === null) return fail(res, 'bad-request', `bad ${HEADER.version} header`)
        const line = group.drop(key, before)
        res.statusCode = 204
        res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
        res.setHeader(HEADER.version, String(line))
        return void res.end()
      }
      default:
        res.setHeader('allow', 'GET, HEAD, PUT, DELETE')
        return fail(res, 'bad-request', `method ${req.method} is not allowed`, 405)
    }
  }
}

/** DELETE `{basePath}{group}/` (the empty key, which no key can be): clear the group up to the epoch in `x-peercache-version`. */
function answerClear(group: ServedGroup, req: IncomingMessage, res: ServerResponse): void {
  const epoch = versionHeader(req.headers[HEADER.version], CLEAR_MAX_AHEAD_MS)
  if (epoch === undefined || epoch === null) {
    fail(res, 'bad-request', `a clear needs a plausible ${HEADER.version} (its epoch)`)
    return
  }
  const line = group.clear(epoch)
  res.statusCode = 204
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.setHeader(HEADER.version, String(line))
  res.end()
}

/** The frames of a batch go out as their values are ready, gathered per microtask into one write. */
async function answerBatch(options: HandlerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let items: BatchItem[]
  try {
    items = decodeBatch(await readBody(req, MAX_BATCH_BODY_BYTES))
  } catch (err) {
    return fail(res, 'bad-request', (err as Error).message)
  }
  if (items.length === 0 || items.length > MAX_BATCH_KEYS) return fail(res, 'bad-request', `a batch holds 1 to ${MAX_BATCH_KEYS} keys`)
  // Made only if a key has to wait for a load: the asker hanging up then takes those waits off their flights.
  let ac: AbortController | undefined
  const signal = () => {
    if (ac === undefined) {
      const c = (ac = new AbortController())
      setMaxListeners(0, c.signal) // one listener per key of the batch waiting on a flight
      res.once('close', () => {
        if (!res.writableFinished) c.abort()
      })
    }
    return ac.signal
  }
  const ready: Buffer[] = []
  const waiting: [number, Promise<WireEntry>][] = []
  for (const [i, { group: name, key, peek }] of items.entries()) {
    const group = options.group(name)
    if (group === undefined) {
      ready.push(...encodeFrame(i, 'unknown-group', Buffer.from(`no group "${name}" on this peer`)))
      continue
    }
    try {
      const found = peek ? group.peek(key) : group.serve(key, signal)
      if (found instanceof Promise) waiting.push([i, found])
      else ready.push(...(found ? entryFrame(i, found) : encodeFrame(i, 'miss', Buffer.alloc(0))))
    } catch (err) {
      ready.push(...errorFrame(i, err))
    }
  }
  const head = { 'content-type': 'application/x-peercache-frames', [HEADER.protocol]: String(PROTOCOL_VERSION) }
  if (waiting.length === 0) {
    // Every key was in the cache: headers and frames go out together, in one writev.
    let length = 0
    for (const b of ready) length += b.length
    res.writeHead(200, { ...head, 'content-length': length })
    return void writeAll(res, ready, true)
  }
  // Headers (and what is ready) go out at once: the asker's headers timeout then measures this
  // peer's liveness, not the origin's latency. The rest streams as it is ready.
  res.writeHead(200, head)
  if (ready.length > 0) writeAll(res, ready, false)
  else res.flushHeaders()
  let remaining = waiting.length
  let out: Buffer[] = []
  const flush = () => {
    if (out.length === 0 || res.destroyed) return
    writeAll(res, out, remaining === 0)
    out = []
  }
  const emit = (frame: Buffer[]) => {
    remaining--
    if (out.length === 0) queueMicrotask(flush)
    out.push(...frame)
  }
  for (const [i, p] of waiting) {
    p.then(
      (e) => emit(entryFrame(i, e)),
      (err: unknown) => emit(errorFrame(i, err)),
    )
  }
}

/**
 * Writes frames in one writev: small pieces (frame headers, small values) are joined, since a copy
 * costs less than a write each; large values are passed as they are, since copying them costs more.
 */
function writeAll(res: ServerResponse, parts: Buffer[], end: boolean): void {
  res.cork()
  let small: Buffer[] = []
  for (const b of parts) {
    if (b.length < LARGE_PART_BYTES) {
      small.push(b)
      continue
    }
    if (small.length > 0) res.write(small.length === 1 ? small[0] : Buffer.concat(small))
    small = []
    res.write(b)
  }
  if (small.length > 0) res.write(small.length === 1 ? small[0] : Buffer.concat(small))
  if (end) res.end()
  process.nextTick(() => res.uncork())
}

/** The frame of an entry: a value, or an absent one. */
function entryFrame(i: number, e: WireEntry): Buffer[] {
  return encodeFrame(i, e.absent ? 'absent' : 'ok', e.bytes, e.expiresAt, e.version)
}

function errorFrame(i: number, err: unknown): Buffer[] {
  const [reason, message] = reasonOf(err)
  return encodeFrame(i, reason, Buffer.from(message))
}

async function answerPut(group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const h = req.headers
  const replica = h[HEADER.replica] === '1'
  const absent = h[HEADER.absent] === '1'
  const version = optionalNumber(h[HEADER.version])
  const expiresAt = optionalNumber(h[HEADER.expires])
  const ttlMs = optionalNumber(h[HEADER.ttl])
  if (version === null || expiresAt === null || ttlMs === null || (replica && version === undefined)) {
    return fail(res, 'bad-request', 'bad or missing metadata headers')
  }
  let body: Buffer
  try {
    body = await readBody(req, group.maxValueBytes)
  } catch (err) {
    return fail(res, 'invalid-value', (err as Error).message, 413)
  }
  try {
    const meta: PutMeta = replica
      ? { replica: true, version: version!, expiresAt: expiresAt ?? 0, absent }
      : { replica: false, ttlMs, absent }
    const stored = await group.put(key, body, meta)
    res.statusCode = 204
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    res.setHeader(HEADER.version, String(stored.version))
    if (stored.expiresAt !== 0) res.setHeader(HEADER.expires, String(stored.expiresAt))
    if (stored.unreachable.length > 0) res.setHeader(HEADER.unreachable, stored.unreachable.join(','))
    res.end()
  } catch (err) {
    if (err instanceof InvalidValueError) return fail(res, 'invalid-value', err.reason)
    fail(res, 'internal', (err as Error)?.message ?? String(err))
  }
}

/** How an error travels: its reason and the message the asker will see. */
function reasonOf(err: unknown): [ErrorReason, string] {
  if (err instanceof LoadTimeoutError) return ['load-timeout', err.originMessage]
  if (err instanceof LoadError) return ['load', err.originMessage]
  if (err instanceof InvalidValueError) return ['invalid-value', err.reason]
  if (err instanceof InvalidKeyError) return ['bad-request', err.message]
  return ['internal', (err as Error)?.message ?? String(err)]
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    // Past the limit the rest is read and dropped, so that the answer can still be sent on this connection.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
    })
    req.once('end', () => {
      if (size > limit) reject(new Error(`the value is larger than this group can cache (${limit} bytes)`))
      else resolve(Buffer.concat(chunks, size))
    })
    req.once('error', reject)
  })
}

/** undefined when absent, null when malformed. */
function optionalNumber(v: string | string[] | undefined): number | undefined | null {
  if (v === undefined) return undefined
  const n = Number(v)
  return typeof v === 'string' && v !== '' && Number.isFinite(n) && n >= 0 ? n : null
}

async function answerGet(group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The asker hanging up (its own caller aborted, or it timed out) takes its wait off the flight.
  const ac = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) ac.abort()
  }
  res.once('close', onClose)
  try {
    const entry = await group.serve(key, () => ac.signal)
    res.statusCode = 200
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', entry.bytes.byteLength)
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    res.setHeader(HEADER.version, String(entry.version))
    if (entry.expiresAt !== 0) res.setHeader(HEADER.expires, String(entry.expiresAt))
    if (entry.absent) res.setHeader(HEADER.absent, '1')
    res.end(req.method === 'HEAD' ? undefined : entry.bytes)
  } catch (err) {
    if (ac.signal.aborted) return // nobody to answer
    fail(res, ...reasonOf(err))
  } finally {
    res.off('close', onClose)
  }
}

function answerHealth(res: ServerResponse, options: HandlerOptions): void {
  const closing = options.closing()
  res.statusCode = closing ? 503 : 200
  res.setHeader('content-type', 'application/json')
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.end(JSON.stringify({ ok: !closing, protocol: PROTOCOL_VERSION }))
}

function fail(res: ServerResponse, reason: ErrorReason, message: string, status = STATUS[reason]): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify({ error: reason, message })
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.setHeader(HEADER.error, reason)
  res.end(body)
}
