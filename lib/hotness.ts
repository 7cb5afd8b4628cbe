// How often has this process fetched a key from a peer lately? A count-min sketch answers in a few
// bytes per counter, with no per-key allocation: 4 rows of saturating 8-bit counters, all halved
// after every `window` increments so that old popularity fades (the TinyLFU "reset").
// groupcache copies a random 1 in 10 fetched values; counting instead copies keys that are
// fetched again and again and leaves one-off keys alone. That only holds while the counters are
// lightly loaded: with more adds per window than counters per row, every counter fills up and
// every one-off key looks hot. Hence a window of one row's width, and conservative updates (only
// the smallest counters grow), which keep a stream of distinct keys at about 5 % judged hot.
import { hashKey } from './ring.js'

const ROWS = 4

export class Hotness {
  readonly #width: number
  readonly #mask: number
  readonly #counters: Uint8Array
  readonly #window: number
  #added = 0

  /** `width` counters per row (rounded up to a power of two); halving every `window` increments (default: width). */
  constructor(width = 4096, window?: number) {
    let w = 16
    while (w < width) w <<= 1
    this.#width = w
    this.#mask = w - 1
    this.#counters = new Uint8Array(ROWS * w)
    this.#window = window ?? w
  }

  /** Counts one fetch of `key` and returns the estimate of its recent fetches, this one included. */
  add(key: string): number {
    const next = Math.min(255, this.estimate(key) + 1)
    const h1 = hashKey(key, 0x9747b28c)
    const h2 = hashKey(key, 0x85ebca6b) | 1
    // Conservative update: a counter already above the new estimate was raised by other keys; leave it.
    for (let r = 0; r < ROWS; r++) {
      const i = r * this.#width + ((h1 + r * h2) & this.#mask)
      if (this.#counters[i]! < next) this.#counters[i] = next
    }
    if (++this.#added >= this.#window) this.#halve()
    return next
  }

  /** The estimate without counting. */
  estimate(key: string): number {
    const h1 = hashKey(key, 0x9747b28c)
    const h2 = hashKey(key, 0x85ebca6b) | 1
    let min = 255
    for (let r = 0; r < ROWS; r++) min = Math.min(min, this.#counters[r * this.#width + ((h1 + r * h2) & this.#mask)]!)
    return min
  }

  #halve(): void {
    this.#added = 0
    const c = this.#counters
    for (let i = 0; i < c.length; i++) c[i] = c[i]! >> 1
  }
}
