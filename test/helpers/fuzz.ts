// The fuzz suite's plumbing: a seeded PRNG (every case is reproducible from its seed), HTTP/1.1
// requests written as raw bytes (so they can be as wrong as we like), and one exchange over raw TCP
// (node:net) that reports the status the server answered with, or that it closed without one.
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** mulberry32: small, fast, good enough to pick cases; the same seed gives the same sequence. */
export class Prng {
  #s: number
  constructor(seed: number) {
    this.#s = seed >>> 0
  }
  /** A float in [0, 1). */
  next(): number {
    let z = (this.#s = (this.#s + 0x6d2b79f5) >>> 0)
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256)
    return b
  }
}

export interface RawRequest {
  method: string
  path: string
  /** In order; a header may repeat. `host` and `connection: close` are added unless present. */
  headers?: [string, string][]
  body?: Buffer
  /** Send a content-length header with this value instead of the body's length. */
  contentLength?: string
}

/** The bytes of an HTTP/1.1 request, as wrong as `r` says. */
export function requestBytes(r: RawRequest): Buffer {
  const headers = [...(r.headers ?? [])]
  const has = (name: string) => headers.some(([h]) => h.toLowerCase() === name)
  if (!has('host')) headers.unshift(['host', '127.0.0.1'])
  if (!has('connection')) headers.push(['connection', 'close'])
  const length = r.contentLength ?? (r.body === undefined ? undefined : String(r.body.length))
  if (length !== undefined) headers.push(['content-length', length])
  const head = `${r.method} ${r.path} HTTP/1.1\r\n${headers.map(([h, v]) => `${h}: ${v}\r\n`).join('')}\r\n`
  return r.body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), r.body])
}

/** How an exchange ended: the answer's status, or the socket closed with no answer. */
export interface Outcome {
  status: number | 'closed' | 'hung'
  /** The first bytes of the answer, for the report of a failing case. */
  head: string
}

export interface ExchangeOptions {
  /** Write the bytes in pieces of this size with `pauseMs` between them (a slow client). */
  chunkBytes?: number
  pauseMs?: number
  /** Stop writing after this many bytes and just wait (a stalled client). */
  stallAfter?: number
  /** Give up (outcome 'hung') after this long, in ms. */
  limitMs: number
  /**
   * Half-close after a complete request (default true): a request the server reads wrongly then ends
   * at once. A request that needs work (a load) must not: the server takes the half-close for the
   * asker hanging up and drops the answer, as it should.
   */
  halfClose?: boolean
}

/** Sends `bytes` on a fresh connection and waits for the server to answer or close. */
export async function exchange(port: number, bytes: Buffer, options: ExchangeOptions): Promise<Outcome> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  socket.setNoDelay(true)
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    socket.on('error', () => {}) // a reset is an answer too: the server refused
  })
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), options.limitMs)))
  const send = async () => {
    const end = Math.min(bytes.length, options.stallAfter ?? bytes.length)
    const step = options.chunkBytes ?? end
    for (let o = 0; o < end && !socket.destroyed; o += step) {
      if (!socket.write(bytes.subarray(o, Math.min(end, o + step))))
        await Promise.race([new Promise((r) => socket.once('drain', r)), closed])
      if (options.pauseMs && o + step < end) await sleep(options.pauseMs)
    }
    // A complete request is followed by our half-close; a stalled one keeps the socket open.
    if (options.stallAfter === undefined && options.halfClose !== false && !socket.destroyed) socket.end()
  }
  void send()
  const ended = await Promise.race([closed, hung])
  clearTimeout(timer)
  socket.destroy()
  const answer = Buffer.concat(chunks).toString('latin1')
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(answer)
  if (m) return { status: Number(m[1]), head: answer.slice(0, 300) }
  return { status: ended === 'hung' ? 'hung' : 'closed', head: answer.slice(0, 300) }
}
