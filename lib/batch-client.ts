// The batched fetch of gets (POST {basePath}batch, frames.ts): gets bound for one peer go out at
// once when no batch to that peer is in flight, else gather and share the next request. Also the
// fallback of the peer stream (stream-client.ts) when a peer refuses the upgrade.
import type { Pool } from 'undici'
import { answerError, transportError } from './answer-errors.js'
import { PeerUnavailableError } from './errors.js'
import { FrameParser, encodeBatch } from './frames.js'
import { failSlow, nextRequestNumber, type Queued, retried, settle, settleFrame } from './pending-get.js'
import { HEADER, PROTOCOL_VERSION } from './protocol.js'

export interface BatchClientOptions {
  self: string
  basePath: string
  peerTimeoutMs: number
  fetchTimeoutMs: number
  maxBatchKeys: number
  maxVersionAheadMs: number
  onStall?: (peer: string) => void
}

/** What a batch needs of the PeerClient: its pools and its signatures. */
export interface BatchTransport {
  /** The pool for a request to `peer`, `batches` other batches being under way. */
  pool(peer: string, batches: number): Pool
  /** The headers of a request, signed when auth is on. */
  signed(base: Record<string, string>, method: string, path: string, body?: Uint8Array): Record<string, string>
}

export class BatchClient {
  readonly #o: BatchClientOptions
  readonly #transport: BatchTransport
  readonly #headers: Record<string, string>
  /** Gets bound for each peer, waiting for their batch to be sent. */
  readonly #queues = new Map<string, Queued[]>()
  /** Batches under way, per peer. */
  readonly #running = new Map<string, Set<AbortController>>()

  constructor(o: BatchClientOptions, transport: BatchTransport) {
    this.#o = o
    this.#transport = transport
    this.#headers = {
      [HEADER.protocol]: String(PROTOCOL_VERSION),
      [HEADER.from]: o.self,
      'content-type': 'application/x-peercache-batch',
      // Well within peerTimeoutMs: a batch waiting on a slow origin never goes silent that long.
      [HEADER.heartbeat]: String(heartbeatFor(o.peerTimeoutMs)),
    }
  }

  /** Batches under way to `peer`. */
  running(peer: string): number {
    return this.#running.get(peer)?.size ?? 0
  }

  /**
   * Send at once, coalesce only under load (as Nagle's algorithm and ioredis's auto-pipelining do):
   * with no batch in flight to the peer, the queue goes out at the end of this microtask run (gets
   * made together, as by Promise.all, still share it), so one get at a time waits for no turn of the
   * event loop. While a batch is in flight, gets gather until the loop's next turn and share a request.
   */
  queue(peer: string, item: Queued): void {
    let queue = this.#queues.get(peer)
    if (queue === undefined) {
      const q: Queued[] = (queue = [])
      this.#queues.set(peer, q)
      if (this.#running.has(peer)) setImmediate(() => this.#flush(peer, q))
      else queueMicrotask(() => this.#flush(peer, q))
    }
    queue.push(item)
    if (queue.length >= this.#o.maxBatchKeys) this.#flush(peer, queue)
  }

  /** Fails every batch under way to `peer` (it is down): their gets go on to a replica or load locally. */
  abortPeer(peer: string, reason: string): void {
    for (const ctl of this.#running.get(peer) ?? []) ctl.abort(new PeerUnavailableError(peer, reason))
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
    const o = this.#o
    const batch = nextRequestNumber()
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
      const res = await this.#transport.pool(peer, running.size - 1).request({
        path,
        method: 'POST',
        headers: this.#transport.signed(this.#headers, 'POST', path, body),
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
      // Liveness is not load time: past fetchTimeoutMs between values, the keys still waiting fail (failSlow).
      let heardAt = Date.now()
      slow = setTimeout(() => {
        failSlow(peer, items, Date.now() - heardAt < o.peerTimeoutMs, o.fetchTimeoutMs)
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
            if (frame.status === 'retry') {
              const again = retried(peer, item)
              if (again) this.queue(peer, again) // in the next batch to that peer (this batch forgets it)
            } else settleFrame(peer, item, frame, o.maxVersionAheadMs)
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
}

/** The heartbeat interval an asker asks for: well within its peerTimeoutMs, a quarter of it. */
export function heartbeatFor(peerTimeoutMs: number): number {
  return Math.max(1, Math.floor(peerTimeoutMs / 4))
}
