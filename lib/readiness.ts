// Readiness: whether this process knows its membership yet. A peer given its peers is ready at once;
// one whose peers come later (DNS discovery, `awaitPeers`) is not until the first `setPeers()`. Until
// then it would think itself alone and load every key itself, so processes started together would
// each load everything: the gets that need the ring wait here instead, up to a bound, and the health
// endpoint says "starting" so an orchestrator sends no traffic yet.
import { ClosedError } from './errors.js'
import type { HealthProbe } from './health.js'

/** Wait between two probes of a member that did not answer yet (not listening yet: refused at once), in ms. */
const RETRY_MS = 50

export class Readiness {
  #ready: boolean
  #closed = false
  readonly #timeoutMs: number
  readonly #onLate: () => void
  #late = false
  #resolve: () => void = () => {}
  #reject: (err: unknown) => void = () => {}
  /** Settles when ready (or rejects with ClosedError on close); only made when someone asks. */
  #promise: Promise<void> | undefined
  /** Aborts the first probes of the members (on close). */
  readonly #stop = new AbortController()
  #checking = false

  /**
   * @param ready whether the membership is known from the start (a static list)
   * @param timeoutMs how long `untilReady()` holds a caller, in ms, before it goes on regardless
   * @param onLate called once, the first time a caller went on without readiness (to log it)
   */
  constructor(ready: boolean, timeoutMs: number, onLate: () => void) {
    this.#ready = ready
    this.#timeoutMs = timeoutMs
    this.#onLate = onLate
  }

  /** The membership is known and the peer is not closing. */
  get ready(): boolean {
    return this.#ready && !this.#closed
  }

  /** Why the peer is not ready, or undefined when it is. */
  get reason(): 'starting' | 'closing' | undefined {
    if (this.#closed) return 'closing'
    return this.#ready ? undefined : 'starting'
  }

  /** Resolves once the membership is known; rejects with ClosedError if the peer closes first. */
  whenReady(): Promise<void> {
    if (this.#ready) return Promise.resolve()
    if (this.#closed) return Promise.reject(new ClosedError())
    this.#promise ??= new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    return this.#promise
  }

  /**
   * For a get, set or remove made before readiness: resolves once ready, at close (the caller then
   * meets the closed peer), or after `timeoutMs`, whichever comes first; never rejects.
   */
  untilReady(): Promise<void> {
    if (this.#ready || this.#closed) return Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (!this.#late) {
          this.#late = true
          this.#onLate()
        }
        resolve()
      }, this.#timeoutMs)
    })
    return Promise.race([this.whenReady().catch(() => {}), bound]).finally(() => clearTimeout(timer))
  }

  /**
   * The membership is known (the first `setPeers()`): ready once every other member has answered
   * `probe` (a member listed in DNS may not be listening yet: asked now, it would be taken for down
   * and its keys loaded here), or `timeoutMs` after this call, whichever comes first.
   */
  async membersKnown(others: readonly string[], probe: HealthProbe, probeTimeoutMs: number): Promise<void> {
    if (this.#ready || this.#checking || this.#closed) return
    this.#checking = true
    const deadline = Date.now() + this.#timeoutMs
    await Promise.all(others.map((peer) => this.#untilAnswers(peer, probe, probeTimeoutMs, deadline)))
    if (!this.#closed) this.markReady()
  }

  async #untilAnswers(peer: string, probe: HealthProbe, probeTimeoutMs: number, deadline: number): Promise<void> {
    while (!this.#closed && Date.now() < deadline) {
      if (await this.#within(Math.min(probeTimeoutMs, deadline - Date.now()), (signal) => probe(peer, signal).catch(() => false))) return
      await this.#within(RETRY_MS, () => new Promise<boolean>(() => {}))
    }
  }

  /** `run`'s result, or false once `ms` passed or the peer closed (its signal then aborts); leaves no timer behind. */
  async #within(ms: number, run: (signal: AbortSignal) => Promise<boolean>): Promise<boolean> {
    const ac = new AbortController()
    const abort = () => ac.abort()
    this.#stop.signal.addEventListener('abort', abort)
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(1, ms))
      ac.signal.addEventListener('abort', () => resolve(false))
    })
    try {
      return await Promise.race([run(ac.signal), expired])
    } finally {
      clearTimeout(timer)
      ac.abort()
      this.#stop.signal.removeEventListener('abort', abort)
    }
  }

  /** Ready now. */
  markReady(): void {
    if (this.#ready) return
    this.#ready = true
    this.#resolve()
  }

  /** The peer is closing: not ready from now on, and whoever waits is let go. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#stop.abort()
    if (!this.#ready) {
      // A promise nobody awaits must not become an unhandled rejection.
      this.#promise?.catch(() => {})
      this.#reject(new ClosedError())
    }
  }
}
