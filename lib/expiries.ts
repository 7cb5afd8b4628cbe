// When the values that change events announced expire: one timer for the earliest, a binary heap for
// the rest, so a million keys set with a time to live cost one timer, not a million.

interface Due {
  at: number
  key: string
  version: number
}

export class Expiries {
  readonly #fire: (key: string, version: number) => void
  #heap: Due[] = []
  #timer: NodeJS.Timeout | undefined
  #timerAt = Number.POSITIVE_INFINITY

  /** `fire(key, version)` at each expiry (the caller checks whether that version is still the key's latest). */
  constructor(fire: (key: string, version: number) => void) {
    this.#fire = fire
  }

  get size(): number {
    return this.#heap.length
  }

  /** Calls fire(key, version) once `at` (ms since the epoch) has passed. */
  add(key: string, version: number, at: number): void {
    const heap = this.#heap
    heap.push({ at, key, version })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) break
      ;[heap[parent], heap[i]] = [heap[i]!, heap[parent]!]
      i = parent
    }
    if (at < this.#timerAt) this.#arm()
  }

  /** Keeps only the expiries `keep` still wants (a sorted array is a heap). */
  compact(keep: (key: string, version: number) => boolean): void {
    this.#heap = this.#heap.filter((d) => keep(d.key, d.version)).sort((a, b) => a.at - b.at)
    this.#arm()
  }

  clear(): void {
    this.#heap = []
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
  }

  #arm(): void {
    clearTimeout(this.#timer)
    const next = this.#heap[0]
    if (next === undefined) {
      this.#timer = undefined
      this.#timerAt = Number.POSITIVE_INFINITY
      return
    }
    this.#timerAt = next.at
    // Past the expiry by a millisecond: the caches treat an entry as expired strictly after it.
    this.#timer = setTimeout(() => this.#run(), Math.max(0, next.at - Date.now() + 1)).unref()
  }

  #run(): void {
    const now = Date.now()
    while (this.#heap.length > 0 && this.#heap[0]!.at < now) {
      const due = this.#pop()
      this.#fire(due.key, due.version)
    }
    this.#arm()
  }

  #pop(): Due {
    const heap = this.#heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && heap[l]!.at < heap[m]!.at) m = l
        if (r < heap.length && heap[r]!.at < heap[m]!.at) m = r
        if (m === i) break
        ;[heap[m], heap[i]] = [heap[i]!, heap[m]!]
        i = m
      }
    }
    return top
  }
}
