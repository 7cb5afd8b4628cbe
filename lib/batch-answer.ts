// The answer to a batch: frames go out as values are ready, gathered per microtask into one write.
// Bounded three ways, so that a small request cannot make this peer send or hold without limit:
// a key named twice is answered once; the values of one answer are capped at a byte budget (once
// the values already at hand spend it, the keys after them are answered `retry`, with no load started,
// and asked for again in the asker's next batch; a key that was loading when the budget ran out is
// answered `retry` too, its load kept in the cache); and the server stops writing while the socket's
// buffer is full, resuming on drain, so an asker that does not read holds about one budget here at most.
import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBody } from './body.js'
import { type BatchItem, decodeBatch, encodeFrame } from './frames.js'
import { FrameWriter } from './frame-writer.js'
import { answerKey, EMPTY, type KeyServing, valueFrame } from './key-answer.js'
import { HEADER, MAX_BATCH_KEYS, PROTOCOL_VERSION, type WireEntry } from './protocol.js'
import { fail, refuseBody } from './refusals.js'

/** Limit of a batch request's body, in bytes (its keys are limited by MAX_BATCH_KEYS). */
export const MAX_BATCH_BODY_BYTES = 8 << 20
/** Heartbeat interval when the asker names none (an older asker: it skips the frames), in ms. */
const DEFAULT_HEARTBEAT_MS = 250
/** Bounds of the interval an asker may ask for, in ms: a tiny one would make this peer spin. */
const MIN_HEARTBEAT_MS = 20
const MAX_HEARTBEAT_MS = 60_000

export interface BatchServing extends KeyServing {
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
  const budgeted = (i: number, e: WireEntry) => {
    if (spent > 0 && spent + e.bytes.byteLength > o.maxBatchBytes) return encodeFrame(i, 'retry', EMPTY)
    spent += e.bytes.byteLength
    return valueFrame(i, e)
  }
  const ready: Buffer[] = []
  const waiting: Promise<Buffer[]>[] = []
  const first = new Map<string, number>()
  for (const [i, item] of items.entries()) {
    const id = `${item.peek ? 1 : 0}\u0000${item.group}\u0000${item.key}`
    const earlier = first.get(id)
    if (earlier !== undefined) {
      ready.push(...encodeFrame(i, 'bad-request', Buffer.from(`named twice in this batch (answered at index ${earlier})`)))
      continue
    }
    first.set(id, i)
    // The budget is spent: no more work for this answer.
    if (spent >= o.maxBatchBytes && o.group(item.group) !== undefined) {
      ready.push(...encodeFrame(i, 'retry', EMPTY))
      continue
    }
    const frame = answerKey(o, i, item, signal, budgeted)
    if (frame instanceof Promise) waiting.push(frame)
    else ready.push(...frame)
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
  for (const p of waiting) void p.then(emit)
  // Liveness apart from load time: while loads run, an empty frame at least every interval tells the
  // asker this peer is alive, however slow its origin (the asker's silence timer is peerTimeoutMs).
  const beat = setInterval(() => {
    if (remaining === 0 || res.destroyed) return clearInterval(beat)
    out.beat()
  }, heartbeatMs(req.headers[HEADER.heartbeat]))
  beat.unref()
  res.once('close', () => clearInterval(beat))
}

/** The interval the asker asked for (a quarter of its peerTimeoutMs), within bounds. */
export function heartbeatMs(header: string | string[] | undefined): number {
  const ms = typeof header === 'string' && /^\d{1,9}$/.test(header) ? Number(header) : DEFAULT_HEARTBEAT_MS
  return Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, ms))
}
