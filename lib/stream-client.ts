// The asker's side of the peer stream (stream-answer.ts): one persistent connection per peer,
// upgraded from HTTP/1.1, on which every get goes out at once as a request frame with an id and
// its answer comes back whenever it is ready. Frames made in one microtask run share one write.
// A peer that refuses the upgrade (an older peer, a proxy, a handler mounted without the upgrade
// listener) gets batches instead (batch-client.ts), and the upgrade is tried again later.
// Over 300 lines: the upgrade, the frames out and in, and the watch over silence are one connection's life.
import net from 'node:net'
import tls from 'node:tls'
import type { Auth } from './auth.js'
import { heartbeatFor } from './batch-client.js'
import { PeerUnavailableError } from './errors.js'
import { FrameParser, HEARTBEAT_INDEX } from './frames.js'
import type { ClientTlsOptions } from './options.js'
import { failSlow, nextRequestNumber, type Queued, retried, settle, settleFrame } from './pending-get.js'
import { HEADER, PROTOCOL_VERSION } from './protocol.js'
import { streamPath } from './stream-answer.js'
import { encodeStreamRequest, MAX_STREAM_ID, STREAM_UPGRADE } from './stream-frames.js'

/** Most bytes of an answer's status line and headers: past it, whatever answered is not a peer. */
const MAX_HEAD_BYTES = 16 * 1024

export interface StreamClientOptions {
  self: string
  basePath: string
  /** For the TCP (and TLS) connection and the upgrade's answer together, in ms. */
  connectTimeoutMs: number
  /** Silence of a stream with keys waiting (no frame, heartbeats included) that ends it, in ms. */
  peerTimeoutMs: number
  /** Longest wait for one key's value, in ms (then LoadTimeoutError from a live owner). */
  fetchTimeoutMs: number
  /** A stream unused this long is ended by the asker, as an idle keep-alive connection is, in ms. */
  keepAliveTimeoutMs: number
  maxVersionAheadMs: number
  /** After a refused upgrade, how long that peer's gets go by batch before the upgrade is tried again, in ms. */
  retryUpgradeMs: number
  onStall?: (peer: string) => void
  auth?: Auth
  tls?: ClientTlsOptions
}

export class StreamClient {
  readonly #o: StreamClientOptions
  /** Where gets go while a peer refuses the upgrade: the batch. */
  readonly #fallback: (peer: string, item: Queued) => void
  readonly #streams = new Map<string, PeerStream>()
  /** Peers that refused the upgrade, with the time (ms since the epoch) until which they get batches. */
  readonly #refused = new Map<string, number>()
  #closed = false

  constructor(o: StreamClientOptions, fallback: (peer: string, item: Queued) => void) {
    this.#o = o
    this.#fallback = fallback
  }

  /** Sends a get on the peer's stream (opened on first use), or by batch while the peer refuses streams. */
  send(peer: string, item: Queued): void {
    const until = this.#refused.get(peer)
    if (until !== undefined) {
      if (Date.now() < until) return void this.#fallback(peer, item)
      this.#refused.delete(peer)
    }
    let stream = this.#streams.get(peer)
    if (stream === undefined) {
      if (this.#closed)
        return void settle(
          item,
          undefined,
          new PeerUnavailableError(peer, 'this peer is closed: nothing more is sent', { reason: 'closed' }),
        )
      stream = new PeerStream(peer, this.#o, {
        refused: (waiting) => {
          this.#refused.set(peer, Date.now() + this.#o.retryUpgradeMs)
          for (const q of waiting) this.#fallback(peer, q)
        },
        ended: () => {
          if (this.#streams.get(peer) === stream) this.#streams.delete(peer)
        },
        again: (q) => this.send(peer, q),
      })
      this.#streams.set(peer, stream)
    }
    stream.send(item)
  }

  /** Ends the peer's stream (it is down): its gets fail with PeerUnavailableError and go on to a replica or load here. */
  abortPeer(peer: string, reason: string): void {
    this.#streams.get(peer)?.fail(new PeerUnavailableError(peer, reason))
  }

  /** Ends the streams of peers that left. */
  retain(keep: Set<string>): void {
    for (const [peer, stream] of this.#streams) if (!keep.has(peer)) stream.fail(new PeerUnavailableError(peer, 'no longer a member'))
    for (const peer of this.#refused.keys()) if (!keep.has(peer)) this.#refused.delete(peer)
  }

  /** Ends every stream; from now on nothing is sent. */
  async close(): Promise<void> {
    this.#closed = true
    const streams = [...this.#streams.values()]
    for (const s of streams) s.fail(new PeerUnavailableError(s.peer, 'this peer is closed', { reason: 'closed' }))
    await Promise.all(streams.map((s) => s.closed))
  }
}

interface StreamEvents {
  /** The peer answered the upgrade with something else than 101: these gets were not sent. */
  refused(waiting: Queued[]): void
  /** The stream is over (closed, failed or refused): the next get opens another. */
  ended(): void
  /** A key answered `retry`, to send again. */
  again(q: Queued): void
}

/** A key sent on a stream, and when (Date.now()), for its fetchTimeoutMs. */
interface Sent {
  q: Queued
  at: number
}

/** One upgraded connection to a peer. */
class PeerStream {
  readonly peer: string
  readonly closed: Promise<void>
  readonly #o: StreamClientOptions
  readonly #events: StreamEvents
  readonly #socket: net.Socket
  /** Keys sent (or to be sent once upgraded) and not answered yet, in the order sent. */
  readonly #waiting = new Map<number, Sent>()
  /** Request frames for the next write. */
  #out: Buffer[] = []
  #nextId = 0
  /** The answer's head, until the upgrade is answered; then undefined. */
  #head: Buffer | undefined = Buffer.alloc(0)
  readonly #parser = new FrameParser()
  /** When this stream last heard from the peer, or started waiting for it (ms since the epoch). */
  #heardAt = Date.now()
  /** When a key was last sent or a frame last came (ms since the epoch): the stream is idle after keepAliveTimeoutMs. */
  #usedAt = Date.now()
  /** Watches the stream: silence past peerTimeoutMs, a key past fetchTimeoutMs, idleness; undefined while not armed. */
  #timer: NodeJS.Timeout | undefined
  /** When #timer fires (ms since the epoch). */
  #timerAt = 0
  /** Ended: nothing more is sent on it, and what waited has failed. */
  #failed = false
  /** The watch saw silence and waits for this turn's I/O to be read before it believes it. */
  #readFirst = false

  constructor(peer: string, o: StreamClientOptions, events: StreamEvents) {
    this.peer = peer
    this.#o = o
    this.#events = events
    const url = new URL(peer)
    const https = url.protocol === 'https:'
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const port = Number(url.port) || (https ? 443 : 80)
    this.#socket = https
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...o.tls })
      : net.connect({ host, port })
    const socket = this.#socket
    socket.setNoDelay(true)
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    const upgradeTimer = setTimeout(
      () => this.fail(new PeerUnavailableError(peer, `no stream within connectTimeoutMs (${o.connectTimeoutMs} ms)`)),
      o.connectTimeoutMs,
    )
    socket.once(https ? 'secureConnect' : 'connect', () => socket.write(this.#upgradeRequest(url.host)))
    socket.on('data', (chunk: Buffer) => {
      if (this.#head === undefined) return void this.#read(chunk)
      const rest = this.#answered(chunk)
      if (rest === undefined) return
      clearTimeout(upgradeTimer)
      if (rest.length > 0) this.#read(rest)
    })
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.fail(new PeerUnavailableError(peer, `${err.code ?? 'error'}: ${err.message}`, { cause: err })),
    )
    socket.once('close', () => {
      clearTimeout(upgradeTimer)
      this.fail(new PeerUnavailableError(peer, 'the stream closed'))
    })
  }

  #upgradeRequest(host: string): string {
    const o = this.#o
    const path = streamPath(o.basePath)
    const headers: Record<string, string> = {
      host,
      connection: 'upgrade',
      upgrade: STREAM_UPGRADE,
      [HEADER.protocol]: String(PROTOCOL_VERSION),
      [HEADER.from]: o.self,
      [HEADER.heartbeat]: String(heartbeatFor(o.peerTimeoutMs)),
      ...o.auth?.sign('GET', path, o.self),
    }
    let head = `GET ${path} HTTP/1.1\r\n`
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
    return `${head}\r\n`
  }

  /** Reads the upgrade's answer: the bytes after it once it is a 101, undefined while it is incomplete (or refused). */
  #answered(chunk: Buffer): Buffer | undefined {
    const head = Buffer.concat([this.#head!, chunk])
    const end = head.indexOf('\r\n\r\n')
    if (end === -1) {
      if (head.length > MAX_HEAD_BYTES) this.#refuse('an answer head of more than 16 KiB')
      else this.#head = head
      return undefined
    }
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, Math.min(end, 64)))?.[1]
    if (status !== '101') {
      this.#refuse(`HTTP ${status ?? '(not HTTP)'}`)
      return undefined
    }
    this.#head = undefined
    this.#heardAt = Date.now()
    this.#write()
    return head.subarray(end + 4)
  }

  /** The peer does not take streams: what waits goes by batch, and so do its gets for a while. */
  #refuse(why: string): void {
    const waiting = [...this.#waiting.values()].map((s) => s.q)
    this.#waiting.clear()
    this.fail(new PeerUnavailableError(this.peer, `refused the stream upgrade: ${why}`))
    this.#events.refused(waiting)
  }

  send(q: Queued): void {
    if (this.#failed) return void this.#events.again(q) // ended meanwhile: another stream takes it
    const id = this.#nextId
    this.#nextId = id === MAX_STREAM_ID ? 0 : id + 1
    if (this.#waiting.size === 0) this.#heardAt = Date.now() // silence counts from when there is something to hear
    const now = Date.now()
    this.#usedAt = now
    this.#waiting.set(id, { q, at: now })
    if (this.#out.length === 0) queueMicrotask(() => this.#write())
    this.#out.push(encodeStreamRequest(id, q))
    this.#arm(this.#o.peerTimeoutMs)
  }

  /** The request frames of this microtask run, in one write (once upgraded). */
  #write(): void {
    if (this.#head !== undefined || this.#out.length === 0 || this.#failed) return
    const out = this.#out
    this.#out = []
    const number = nextRequestNumber()
    for (const s of this.#waiting.values()) if (s.q.trace !== undefined && s.q.trace.batch === 0) s.q.trace.batch = number
    this.#socket.write(out.length === 1 ? out[0]! : Buffer.concat(out))
  }

  #read(chunk: Buffer): void {
    this.#heardAt = this.#usedAt = Date.now()
    for (const frame of this.#parser.push(chunk)) {
      if (frame.index === HEARTBEAT_INDEX) continue
      const sent = this.#waiting.get(frame.index)
      if (sent === undefined) continue
      this.#waiting.delete(frame.index)
      if (frame.status === 'retry') {
        const again = retried(this.peer, sent.q)
        if (again) this.send(again)
      } else settleFrame(this.peer, sent.q, frame, this.#o.maxVersionAheadMs)
    }
  }

  /** Makes the watch fire within `ms` (an idle stream's later one is brought forward when keys are sent). */
  #arm(ms: number): void {
    const at = Date.now() + ms
    if (this.#timer !== undefined && this.#timerAt <= at) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => this.#check(), ms)
  }

  /**
   * Silence past peerTimeoutMs with keys waiting (no frame, not even a heartbeat: the owner hung
   * or the network is gone) ends the stream as a silent batch is given up: its keys fail with
   * PeerUnavailableError (they go to a replica or load here) and health probes the peer (onStall).
   * A key past fetchTimeoutMs on a stream that still hears heartbeats fails alone with
   * LoadTimeoutError (the owner's origin is slow, not the peer). A stream with nothing waiting and
   * unused for keepAliveTimeoutMs is ended (the next get opens another).
   */
  #check(): void {
    this.#timer = undefined
    if (this.#failed) return
    const o = this.#o
    const now = Date.now()
    if (this.#waiting.size === 0) {
      const idle = now - this.#usedAt
      if (idle < o.keepAliveTimeoutMs) return void this.#arm(o.keepAliveTimeoutMs - idle)
      this.#failed = true
      this.#events.ended()
      this.#socket.end()
      return
    }
    const quiet = now - this.#heardAt
    if (quiet >= o.peerTimeoutMs && this.#head === undefined) {
      // After a stall of this process (a long GC, a busy loop), timers run before the socket's
      // pending bytes are read: look once more after the I/O of this turn before calling it silence.
      if (!this.#readFirst) {
        this.#readFirst = true
        return void setImmediate(() => this.#check())
      }
      // As a silent batch is given up: its keys go to a replica (or load here) now, within one
      // peerTimeoutMs of the silence, and health probes the peer. Waiting for the probe's verdict
      // first made a get after a partition take peerTimeoutMs plus probeTimeoutMs (2 s, not 1).
      o.onStall?.(this.peer)
      return void this.fail(new PeerUnavailableError(this.peer, `silent for peerTimeoutMs (${o.peerTimeoutMs} ms) with keys waiting`))
    }
    this.#readFirst = false
    let next = o.peerTimeoutMs - quiet
    for (const [id, s] of this.#waiting) {
      const left = s.at + o.fetchTimeoutMs - now
      if (left > 0) {
        next = Math.min(next, left)
        break
      }
      this.#waiting.delete(id)
      failSlow(this.peer, [s.q], true, o.fetchTimeoutMs)
    }
    if (this.#waiting.size > 0) this.#arm(Math.max(1, next))
  }

  /** Ends the stream: every key still waiting fails with `err`. */
  fail(err: PeerUnavailableError): void {
    if (!this.#failed) {
      this.#failed = true
      clearTimeout(this.#timer)
      this.#events.ended()
      this.#socket.destroy()
    }
    for (const s of this.#waiting.values()) settle(s.q, undefined, err)
    this.#waiting.clear()
  }
}
