// How often has this process fetched a key from a peer lately? A count-min sketch answers in a few
// bytes per counter, with no per-key allocation: 4 rows of saturating 8-bit counters, all halved
// after every `window` increments so that old popularity fades (the TinyLFU "reset").
// groupcache copies a random 1 in 10 fetched values; counting instead copies keys that are
// fetched again and again and leaves one-off keys alone.
import { hashKey } from './ring.js'

const ROWS = 4

export class Hotness {
  readonly #width: number
  readonly #mask: number
  readonly #counters: Uint8Array
  readonly #window: number
  #added = 0

  /** `width` counters per row (rounded up to a power of two); halving every `window` increments (default 10 × width). */
  constructor(width = 4096, window?: number) {
    let w = 16
    while (w < width) w <<= 1
    this.#width = w
    this.#mask = w - 1
    this.#counters = new Uint8Array(ROWS * w)
    this.#window = window ?? w * 10
  }

  /** Counts one fetch of `key` and returns the estimate of its recent fetches, this one included. */
  add(key: string): number {
    const h1 = hashKey(key, 0x9747b28c)
    const h2 = hashKey(key, 0x85ebca6b) | 1
    let min = 255
    for (let r = 0; r < ROWS; r++) {
      const i = r * this.#width + ((h1 + r * h2) & this.#mask)
      const c = this.#counters[i]!
      if (c < 255) this.#counters[i] = c + 1
      if (c + 1 < min) min = c + 1
    }
    if (++this.#added >= this.#window) this.#halve()
    return min
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
