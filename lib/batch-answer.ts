// The answer to a batch: frames go out as values are ready, gathered per microtask into one write.
// Bounded three ways, so that a small request cannot make this peer send or hold without limit:
// a key named twice is answered once; the values of one answer are capped at a byte budget (past
// it, keys are answered `retry` and asked for again in the asker's next batch, with no load started
// for them); and the server stops writing while the socket's buffer is full, resuming on drain, so
// an asker that does not read holds about one budget here at most.
import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBody } from './body.js'
import { type BatchItem, decodeBatch, encodeFrame, HEARTBEAT_INDEX } from './frames.js'
import { HEADER, MAX_BATCH_KEYS, PROTOCOL_VERSION, type ServedGroup, type WireEntry } from './protocol.js'
import { errorFrame, fail, refuseBody } from './refusals.js'

/** Limit of a batch request's body, in bytes (its keys are limited by MAX_BATCH_KEYS). */
export const MAX_BATCH_BODY_BYTES = 8 << 20
/** Values at least this large are written as they are rather than copied into one buffer. */
const LARGE_PART_BYTES = 4096
const EMPTY = Buffer.alloc(0)
/** Heartbeat interval when the asker names none (an older asker: it skips the frames), in ms. */
const DEFAULT_HEARTBEAT_MS = 250
/** Bounds of the interval an asker may ask for, in ms: a tiny one would make this peer spin. */
const MIN_HEARTBEAT_MS = 20
const MAX_HEARTBEAT_MS = 60_000

export interface BatchServing {
  group(name: string): ServedGroup | undefined
  /** Most bytes of values in one answer. */
  maxBatchBytes: number
}

export async function answerBatch(o: BatchServing, req: IncomingMessage, res: ServerResponse, digest: string | undefined): Promise<void> {
  let body: Buffer
  try {
    body = await readBody(req, { maxBytes: MAX_BATCH_BODY_BYTES, maxItems: MAX_BATCH_KEYS, digest })
  } catch (err) {
    return refuseBody(res, err)
  }
  let items: BatchItem[]
  try {
    items = decodeBatch(body)
  } catch (err) {
    return fail(res, 'bad-request', `not a batch: ${(err as Error).message}`)
  }
  if (items.length === 0) return fail(res, 'bad-request', `a batch holds 1 to ${MAX_BATCH_KEYS} keys`)
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
  let spent = 0
  // The first value always goes (else a value larger than the budget could never be fetched).
  const valueFrame = (i: number, e: WireEntry) => {
    if (spent > 0 && spent + e.bytes.byteLength > o.maxBatchBytes) return encodeFrame(i, 'retry', EMPTY)
    spent += e.bytes.byteLength
    return encodeFrame(i, e.absent ? 'absent' : 'ok', e.bytes, e.expiresAt, e.version)
  }
  const ready: Buffer[] = []
  const waiting: [number, Promise<WireEntry>][] = []
  const first = new Map<string, number>()
  for (const [i, { group: name, key, peek }] of items.entries()) {
    const id = `${peek ? 1 : 0}\u0000${name}\u0000${key}`
    const earlier = first.get(id)
    if (earlier !== undefined) {
      ready.push(...encodeFrame(i, 'bad-request', Buffer.from(`named twice in this batch (answered at index ${earlier})`)))
      continue
    }
    first.set(id, i)
    const group = o.group(name)
    if (group === undefined) {
      ready.push(...encodeFrame(i, 'unknown-group', Buffer.from(`no group "${name}" on this peer`)))
      continue
    }
    // The budget is spent: no more work for this answer.
    if (spent >= o.maxBatchBytes) {
      ready.push(...encodeFrame(i, 'retry', EMPTY))
      continue
    }
    try {
      const found = peek ? group.peek(key) : group.serve(key, signal)
      if (found instanceof Promise) waiting.push([i, found])
      else ready.push(...(found ? valueFrame(i, found) : encodeFrame(i, 'miss', EMPTY)))
    } catch (err) {
      ready.push(...errorFrame(i, err))
    }
  }
  const head = { 'content-type': 'application/x-peercache-frames', [HEADER.protocol]: String(PROTOCOL_VERSION) }
  const out = new FrameWriter(res)
  if (waiting.length === 0) {
    // Every key was answered from the cache: headers and frames go out together, in one writev.
    let length = 0
    for (const b of ready) length += b.length
    res.writeHead(200, { ...head, 'content-length': length })
    return out.write(ready, true)
  }
  // Headers (and what is ready) go out at once: the asker's headers timeout then measures this
  // peer's liveness, not the origin's latency. The rest streams as it is ready.
  res.writeHead(200, head)
  if (ready.length > 0) out.write(ready, false)
  else res.flushHeaders()
  let remaining = waiting.length
  let batch: Buffer[] = []
  const flush = () => {
    out.write(batch, remaining === 0)
    batch = []
  }
  const emit = (frame: Buffer[]) => {
    remaining--
    if (batch.length === 0) queueMicrotask(flush)
    batch.push(...frame)
  }
  for (const [i, p] of waiting) {
    p.then(
      (e) => emit(valueFrame(i, e)),
      (err: unknown) => emit(errorFrame(i, err)),
    )
  }
  // Liveness apart from load time: while loads run, an empty frame at least every interval tells the
  // asker this peer is alive, however slow its origin (the asker's silence timer is peerTimeoutMs).
  const beat = setInterval(() => {
    if (remaining === 0 || res.destroyed) return clearInterval(beat)
    if (!out.wroteSince()) out.write(encodeFrame(HEARTBEAT_INDEX, 'heartbeat', EMPTY), false)
  }, heartbeatMs(req.headers[HEADER.heartbeat]))
  beat.unref()
  res.once('close', () => clearInterval(beat))
}

/** The interval the asker asked for (a quarter of its peerTimeoutMs), within bounds. */
function heartbeatMs(header: string | string[] | undefined): number {
  const ms = typeof header === 'string' && /^\d{1,9}$/.test(header) ? Number(header) : DEFAULT_HEARTBEAT_MS
  return Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, ms))
}

/**
 * Writes frames with backpressure: while the socket's buffer is full (res.write returned false)
 * frames wait here and go out on 'drain'. Each write is one writev: small pieces (frame headers,
 * small values) are joined, since a copy costs less than a write each; large values are passed as
 * they are, since copying them costs more.
 */
class FrameWriter {
  readonly #res: ServerResponse
  #pending: Buffer[] = []
  #end = false
  #full = false
  #wrote = false

  constructor(res: ServerResponse) {
    this.#res = res
  }

  /** Whether anything was written (or is waiting for the drain) since the last call. */
  wroteSince(): boolean {
    const wrote = this.#wrote || this.#pending.length > 0
    this.#wrote = false
    return wrote
  }

  write(parts: Buffer[], end: boolean): void {
    this.#wrote = true
    for (const p of parts) this.#pending.push(p)
    this.#end ||= end
    if (!this.#full) this.#flush()
  }

  #flush(): void {
    const res = this.#res
    if (res.destroyed) return
    res.cork()
    let small: Buffer[] = []
    let i = 0
    const put = (b: Buffer) => {
      if (!res.write(b)) this.#full = true
    }
    for (; i < this.#pending.length && !this.#full; i++) {
      const b = this.#pending[i]!
      if (b.length < LARGE_PART_BYTES) {
        small.push(b)
        continue
      }
      if (small.length > 0) put(small.length === 1 ? small[0]! : Buffer.concat(small))
      small = []
      if (this.#full) break // this value waits for the drain
      put(b)
    }
    if (small.length > 0) put(small.length === 1 ? small[0]! : Buffer.concat(small))
    this.#pending = this.#pending.slice(i)
    if (this.#pending.length === 0 && this.#end) res.end()
    else if (this.#full)
      res.once('drain', () => {
        this.#full = false
        this.#flush()
      })
    process.nextTick(() => res.uncork())
  }
}
