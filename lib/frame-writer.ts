// Writes answer frames with back-pressure, for a batch's HTTP answer and for a peer stream alike.
import { encodeFrame, HEARTBEAT_INDEX } from './frames.js'

/** Values at least this large are written as they are rather than copied into one buffer. */
const LARGE_PART_BYTES = 4096
const EMPTY = Buffer.alloc(0)

/** What frames are written to: a ServerResponse (a batch's answer) or a socket (a stream). */
export interface FrameSink {
  readonly destroyed: boolean
  readonly writableLength: number
  cork(): void
  uncork(): void
  write(chunk: Buffer): boolean
  end(): unknown
  once(event: 'drain', listener: () => void): unknown
}

/**
 * While the sink's buffer is full (write returned false) frames wait here and go out on 'drain'.
 * Each write is one writev: small pieces (frame headers, small values) are joined, since a copy
 * costs less than a write each; large values are passed as they are, since copying them costs more.
 */
export class FrameWriter {
  readonly #sink: FrameSink
  #pending: Buffer[] = []
  #end = false
  #full = false
  #wrote = false
  /** Called once the sink drained what filled it. */
  readonly #drained: (() => void) | undefined
  /** Bytes the sink may buffer before frames wait here; undefined: its own highWaterMark. */
  readonly #budget: number | undefined

  /**
   * A `budget` above the sink's highWaterMark (16 KiB for a socket) lets a burst of large values go
   * in one writev instead of one drain each.
   */
  constructor(sink: FrameSink, drained?: () => void, budget?: number) {
    this.#sink = sink
    this.#drained = drained
    this.#budget = budget
  }

  /** Whether the sink's buffer is full: frames wait here for its drain. */
  get full(): boolean {
    return this.#full
  }

  /** Whether anything was written (or is waiting for the drain) since the last call. */
  wroteSince(): boolean {
    const wrote = this.#wrote || this.#pending.length > 0
    this.#wrote = false
    return wrote
  }

  /** A heartbeat frame, unless something else was written since the last call: the asker heard from us. */
  beat(): void {
    if (this.wroteSince()) return
    this.write(encodeFrame(HEARTBEAT_INDEX, 'heartbeat', EMPTY), false)
    // The beat itself is not news from us: else the next interval would skip its beat, and beats
    // would go every other interval (half the asker's margin against its silence timer).
    this.#wrote = false
  }

  write(parts: Buffer[], end: boolean): void {
    this.#wrote = true
    for (const p of parts) this.#pending.push(p)
    this.#end ||= end
    if (!this.#full) this.#flush()
  }

  #flush(): void {
    const sink = this.#sink
    if (sink.destroyed) return
    sink.cork()
    let small: Buffer[] = []
    let i = 0
    const put = (b: Buffer) => {
      if (!sink.write(b) && (this.#budget === undefined || sink.writableLength >= this.#budget)) this.#full = true
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
    if (this.#pending.length === 0 && this.#end) sink.end()
    else if (this.#full)
      sink.once('drain', () => {
        this.#full = false
        this.#flush()
        if (!this.#full) this.#drained?.()
      })
    process.nextTick(() => sink.uncork())
  }
}
