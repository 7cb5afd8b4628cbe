// The owner's side of a peer stream: an HTTP/1.1 Upgrade to `{basePath}stream` (checked as every
// peer request is: protocol version, signature, closing), then request frames in (stream-frames.ts)
// and answer frames out (frames.ts), each key answered as a batch answers it (key-answer.ts), in
// any order. Bounded: a frame past the size limits ends the stream; past MAX_STREAM_WAITING keys
// waiting on loads, a key is answered from the cache or `overloaded` (the asker loads it itself, as
// after a batch's 503); reading stops while the answers unread pass maxBatchBytes (the asker that
// does not read is not read from either); heartbeat frames while loads run.
import { setMaxListeners } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { AUTH_HEADER, type Auth, EMPTY_DIGEST } from './auth.js'
import { heartbeatMs } from './batch-answer.js'
import { encodeFrame, FRAME_STATUS } from './frames.js'
import { FrameWriter } from './frame-writer.js'
import { answerKey, type KeyServing, valueFrame } from './key-answer.js'
import { type ErrorReason, HEADER, MAX_BATCH_KEYS, PROTOCOL_VERSION } from './protocol.js'
import { STATUS } from './refusals.js'
import { type StreamRequest, StreamRequestParser, STREAM_UPGRADE } from './stream-frames.js'

export interface StreamServing extends KeyServing {
  basePath: string
  closing(): boolean
  /** When given, the upgrade request must be signed (else 401 and no upgrade). */
  auth?: Auth
  /** Most bytes of answers a stream buffers for an asker that does not read them (maxBatchBytes). */
  maxBatchBytes: number
}

/**
 * Most keys of one stream waiting on loads: past it a key gets only what the cache holds. Not a
 * stall: a cached key still comes back at once while thousands wait on a hung origin.
 */
const MAX_STREAM_WAITING = 16 * MAX_BATCH_KEYS

/** The path of the stream's upgrade request. */
export function streamPath(basePath: string): string {
  return `${basePath}stream`
}

/** The peer streams this peer answers: the 'upgrade' listener, and their end on close. */
export class StreamServer {
  readonly #o: StreamServing
  readonly #streams = new Set<StreamAnswer>()
  #closed = false

  constructor(o: StreamServing) {
    this.#o = o
  }

  /**
   * A node:http 'upgrade' listener for a server of your own (`server.on('upgrade', peer.upgrade)`,
   * or `peer.attach(server)`). Upgrades to other paths are left alone for other listeners (a
   * WebSocket server on the same port), unless `refuseOthers`, for a server that is only ours.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, refuseOthers = false): void {
    const o = this.#o
    const url = req.url ?? ''
    const path = streamPath(o.basePath)
    if (url !== path && !url.startsWith(`${path}?`)) {
      if (refuseOthers) refuse(socket, 'bad-request', `no upgrade here but ${path}`, 404)
      return
    }
    socket.on('error', () => socket.destroy())
    const version = req.headers[HEADER.protocol]
    if (version !== undefined && version !== String(PROTOCOL_VERSION))
      return void refuse(socket, 'protocol', `this peer speaks protocol ${PROTOCOL_VERSION}, the request ${String(version)}`)
    if (String(req.headers.upgrade).toLowerCase() !== STREAM_UPGRADE)
      return void refuse(socket, 'bad-request', `the stream upgrades to ${STREAM_UPGRADE}, not ${String(req.headers.upgrade)}`)
    if (req.method !== 'GET') return void refuse(socket, 'bad-request', `method ${req.method} is not allowed`, 405)
    if (o.auth) {
      const from = req.headers[HEADER.from]
      const failure =
        typeof from === 'object' || req.headers[AUTH_HEADER.digest] !== undefined
          ? 'malformed'
          : o.auth.check({ method: 'GET', path: url, from: from ?? '', digest: EMPTY_DIGEST }, req.headers[AUTH_HEADER.signature])
      if (failure !== undefined) return void refuse(socket, 'unauthorized', `request refused: ${failure}`)
    }
    if (this.#closed || o.closing()) return void refuse(socket, 'closing', 'this peer is shutting down')
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\n${HEADER.protocol}: ${PROTOCOL_VERSION}\r\n\r\n`,
    )
    ;(socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
    const stream = new StreamAnswer(o, socket, heartbeatMs(req.headers[HEADER.heartbeat]))
    this.#streams.add(stream)
    socket.once('close', () => this.#streams.delete(stream))
    if (head.length > 0) stream.read(head)
  }

  /**
   * Stops taking streams; those open answer `closing` to new keys, end once their loads are
   * answered, and are cut after `graceMs`. Resolves once every stream's socket is closed.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true
    const streams = [...this.#streams]
    const cut = setTimeout(() => {
      for (const s of streams) s.destroy()
    }, graceMs)
    await Promise.all(streams.map((s) => s.close()))
    clearTimeout(cut)
  }
}

/** One upgraded socket. */
class StreamAnswer {
  readonly #o: StreamServing
  readonly #socket: Duplex
  readonly #parser = new StreamRequestParser()
  readonly #out: FrameWriter
  /** Keys waiting on a load or a flight. */
  #waiting = 0
  #batch: Buffer[] = []
  #ac: AbortController | undefined
  #closing = false
  readonly #closed: Promise<void>

  constructor(o: StreamServing, socket: Duplex, beatMs: number) {
    this.#o = o
    this.#socket = socket
    this.#out = new FrameWriter(socket, () => this.#resume(), o.maxBatchBytes)
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('data', (chunk: Buffer) => this.read(chunk))
    // The asker's end: answer what waits, then end too.
    socket.once('end', () => this.close())
    // Liveness apart from load time, as in a batch answer (batch-answer.ts).
    const beat = setInterval(() => {
      if (this.#waiting > 0) this.#out.beat()
    }, beatMs)
    beat.unref()
    socket.once('close', () => {
      clearInterval(beat)
      this.#ac?.abort() // the asker is gone: its waits leave their flights
    })
  }

  read(chunk: Buffer): void {
    let requests: StreamRequest[]
    try {
      requests = this.#parser.push(chunk)
    } catch {
      return void this.destroy() // the frames cannot be told apart any more
    }
    for (const r of requests) {
      if (this.#closing || this.#o.closing()) {
        this.#emit(encodeFrame(r.id, 'closing', Buffer.from('this peer is shutting down')))
        continue
      }
      const frame =
        this.#waiting >= MAX_STREAM_WAITING && !r.peek ? this.#cachedOnly(r) : answerKey(this.#o, r.id, r, () => this.#signal(), valueFrame)
      if (!(frame instanceof Promise)) this.#emit(frame)
      else {
        this.#waiting++
        void frame.then((f) => {
          this.#waiting--
          this.#emit(f)
          this.#resume()
        })
      }
    }
  }

  /** The key's value if the cache holds it, else `overloaded`: too many keys of this stream wait already. */
  #cachedOnly(r: StreamRequest): Buffer[] {
    const frame = answerKey(this.#o, r.id, { ...r, peek: true }, () => this.#signal(), valueFrame)
    if (frame instanceof Promise || frame[0]!.readUInt8(4) !== FRAME_STATUS.indexOf('miss')) return frame as Buffer[]
    return encodeFrame(r.id, 'overloaded', Buffer.from(`${MAX_STREAM_WAITING} keys of this stream wait on loads already`))
  }

  /** Frames answered in one microtask run go out in one write. */
  #emit(frame: Buffer[]): void {
    if (this.#batch.length === 0) queueMicrotask(() => this.#flush())
    for (const b of frame) this.#batch.push(b)
  }

  #flush(): void {
    const batch = this.#batch
    this.#batch = []
    this.#out.write(batch, false)
    if (this.#out.full) this.#socket.pause()
    if (this.#closing && this.#waiting === 0) this.#socket.end()
  }

  #resume(): void {
    if (!this.#out.full && !this.#closing) this.#socket.resume()
  }

  #signal(): AbortSignal {
    if (this.#ac === undefined) {
      this.#ac = new AbortController()
      setMaxListeners(0, this.#ac.signal) // one listener per key waiting on a flight
    }
    return this.#ac.signal
  }

  /** Ends once the keys waiting are answered (or at once with none). */
  close(): Promise<void> {
    this.#closing = true
    if (this.#waiting === 0 && this.#batch.length === 0) this.#socket.end()
    return this.#closed
  }

  destroy(): void {
    this.#socket.destroy()
  }
}

/** Refuses an upgrade as other requests are refused (refusals.ts `fail`): status, x-peercache-error, JSON body; then closes. */
function refuse(socket: Duplex, reason: ErrorReason, message: string, status = STATUS[reason]): void {
  const body = JSON.stringify({ error: reason, message })
  socket.end(
    `HTTP/1.1 ${status} Refused\r\nconnection: close\r\ncontent-type: application/json\r\n${HEADER.protocol}: ${PROTOCOL_VERSION}\r\n${HEADER.error}: ${reason}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}
