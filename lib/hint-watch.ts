// Noticing a heal quickly, for the peers that have hints waiting. Failure detection probes a down
// peer after a cooldown of up to a second, one probe at a time; across a partition each probe's
// connection attempt is dropped and waits out its timeout, so a heal used to be noticed 1-2 s late,
// and the cut-off peer served the values it missed for that long. While a peer has hints waiting,
// this tries a bare TCP connection to it every `everyMs` (a few at once at most, each on its own
// socket, so none waits behind an attempt lost in the partition); the first that connects means the
// network is back, and the hints are replayed at once.
import net from 'node:net'

export interface HintWatchOptions {
  /** Time between two connection attempts to one peer, in ms. */
  everyMs: number
  /** How long one attempt may take, in ms. */
  timeoutMs: number
  /** Most attempts under way at once per peer. */
  maxAttempts: number
  /** Whether `peer` still needs watching: hints waiting, this process not closed. */
  wanted(peer: string): boolean
  /** A connection to `peer` succeeded: replay now. */
  reachable(peer: string): void
}

export class HintWatch {
  readonly #o: HintWatchOptions
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #sockets = new Set<net.Socket>()
  #closed = false

  constructor(options: HintWatchOptions) {
    this.#o = options
  }

  /** Starts watching `peer`, unless it is watched already; it stops by itself once `wanted` says no. */
  watch(peer: string): void {
    if (this.#closed || this.#timers.has(peer)) return
    const { host, port } = endpoint(peer)
    let attempts = 0
    const timer = setInterval(() => {
      if (this.#closed || !this.#o.wanted(peer)) return this.#stop(peer)
      if (attempts >= this.#o.maxAttempts) return
      attempts++
      const socket = net.connect({ host, port })
      this.#sockets.add(socket)
      let finished = false
      // Once per attempt: an 'error' comes on a socket Node has destroyed already, so its state
      // cannot tell whether the attempt was counted back (a refused attempt never was).
      const done = (connected: boolean) => {
        if (finished) return
        finished = true
        socket.destroy()
        this.#sockets.delete(socket)
        attempts--
        if (connected && !this.#closed && this.#o.wanted(peer)) this.#o.reachable(peer)
      }
      socket.setTimeout(this.#o.timeoutMs, () => done(false))
      socket.once('connect', () => done(true))
      socket.once('error', () => done(false))
    }, this.#o.everyMs)
    timer.unref()
    this.#timers.set(peer, timer)
  }

  /** Stops every watch and drops the attempts under way. */
  close(): void {
    this.#closed = true
    for (const peer of [...this.#timers.keys()]) this.#stop(peer)
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
  }

  #stop(peer: string): void {
    clearInterval(this.#timers.get(peer))
    this.#timers.delete(peer)
  }
}

/** Host (brackets off an IPv6 address) and port of a peer's URL. */
function endpoint(peer: string): { host: string; port: number } {
  const url = new URL(peer)
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port }
}
