// Origin loads that a group runs for other peers, bounded: at most `concurrency` at once, at most
// `maxQueued` more waiting, and past that refused at once with OverloadedError (the server answers
// 503 with Retry-After, and the asking peer falls back as for any unreachable owner). One batch of
// 1,024 fresh keys can then start no more than the bound, instead of 1,024 loads at the origin.
import pLimit, { type LimitFunction } from 'p-limit'
import { PeercacheError } from './errors.js'

/** A load for a peer was refused because too many were running and waiting. */
export class OverloadedError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_OVERLOADED'
  override name = 'OverloadedError'
  constructor(
    readonly group: string,
    readonly retryAfterMs: number,
  ) {
    super(`peercache: group "${group}": too many origin loads for peers under way; retry after ${retryAfterMs} ms`)
  }
}

export class LoadLimiter {
  readonly #group: string
  readonly #limit: LimitFunction
  readonly #max: number
  readonly #retryAfterMs: number
  /** Loads admitted and not yet settled: running and queued. */
  #admitted = 0

  constructor(group: string, concurrency: number, maxQueued: number, retryAfterMs = 1000) {
    this.#group = group
    this.#limit = pLimit(concurrency)
    this.#max = concurrency + maxQueued
    this.#retryAfterMs = retryAfterMs
  }

  /** Whether one more load would be refused now. */
  get full(): boolean {
    return this.#admitted >= this.#max
  }

  /** Runs `load` within the bound; throws OverloadedError at once (nothing started) when it is full. */
  run<T>(load: () => Promise<T>): Promise<T> {
    if (this.full) throw new OverloadedError(this.#group, this.#retryAfterMs)
    this.#admitted++
    return this.#limit(load).finally(() => this.#admitted--)
  }

  /** Loads running now and waiting. */
  get counts(): { running: number; queued: number } {
    return { running: this.#limit.activeCount, queued: this.#admitted - this.#limit.activeCount }
  }
}
