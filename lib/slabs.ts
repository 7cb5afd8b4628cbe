// Small values packed into shared slabs: one Buffer of its own costs ~400 bytes of RSS beyond the
// value on Node 20 (the Buffer and ArrayBuffer objects, the backing store record, malloc's chunk),
// a record in a slab costs its 8-byte header. A region is written once and never again while a
// view of it may exist, so a view that a caller holds never changes. Space freed by a delete stays
// dead until its slab is let go: emptied, or compacted (its survivors copied into the open slab).
// A slab let go that was never viewed is kept to be written again; one that was is left to the GC
// (memory still viewed by a caller stays alive through that view). README, "Performance", has the figures.

/** Bytes of each slab (measured: larger slabs save nothing per entry, and a held view pins the whole slab). */
export const SLAB_BYTES = 64 * 1024

/**
 * The largest value stored in a slab, in bytes; larger ones keep a Buffer each. Measured by
 * `npm run bench -- --only memory` and /work: a Buffer of its own costs ~400 bytes beyond its value,
 * 10% of a 4 KiB value and under 5% above 8 KiB, where a slab of 64 KiB would hold too few values
 * for compaction to pay.
 */
export const SLAB_VALUE_MAX_BYTES = 8 * 1024

/** Each record in a slab starts with its slot (int32) and its length (int32): compaction reads them. */
export const SLAB_HEADER_BYTES = 8

/**
 * Dead bytes allowed, as a share of the bytes of all slabs, before the emptiest slab is compacted:
 * the cache charges them, so at worst it holds a quarter fewer values; compacting sooner copies more
 * (with holes everywhere, each slab compacted at 75% live copies 3 bytes to free 1).
 */
const DEAD_SHARE = 0.25

/** Slabs let go that were never viewed, kept to be written again instead of freed and allocated anew. */
const SPARE_SLABS = 2

/** Locations are packed into one number: slab index * LOCATION_SPAN + offset of the value in the slab. */
const LOCATION_SPAN = 2 ** 20

/** What owns the records: a compaction asks whether a record is still in use and tells where it moved. */
export interface SlabOwner {
  /** Whether `slot` still holds the value at `location` (a slot is reused once its value is gone). */
  holds(slot: number, location: number): boolean
  /** The value of `slot` moved to `location` (views of its old place stay valid: they are never written). */
  moved(slot: number, location: number): void
}

export class SlabArena {
  /**
   * Bytes of closed slabs that no record uses (freed records and the unwritten tail): memory held for
   * nothing, which the cache charges to its budget. The open slab's are counted when it closes.
   */
  deadBytes = 0
  /** Slabs compacted (survivors copied, slab let go): a figure for tests and stats. */
  compactions = 0
  readonly #owner: SlabOwner
  readonly #slabBytes: number
  readonly #slabs: (Buffer | undefined)[] = []
  /** Per slab: bytes written (the next record's offset), bytes of records in use, and whether a view of it was made. */
  readonly #written: number[] = []
  readonly #live: number[] = []
  readonly #viewed: boolean[] = []
  readonly #freeIndexes: number[] = []
  readonly #spare: Buffer[] = []
  #open = -1
  #compacting = false

  constructor(owner: SlabOwner, slabBytes = SLAB_BYTES) {
    this.#owner = owner
    this.#slabBytes = slabBytes
  }

  /** Slabs held (the open one included; spare ones not). */
  get slabs(): number {
    return this.#slabs.length - this.#freeIndexes.length
  }

  /** Copies `bytes` (at most SLAB_VALUE_MAX_BYTES) into the open slab for `slot`; returns its location. */
  add(slot: number, bytes: Uint8Array): number {
    const need = SLAB_HEADER_BYTES + bytes.byteLength
    // A loop: opening a slab may compact another into it, and leave too little room.
    while (this.#open < 0 || this.#written[this.#open]! + need > this.#slabBytes) this.#openSlab()
    const index = this.#open
    const slab = this.#slabs[index]!
    const at = this.#written[index]!
    slab.writeInt32LE(slot, at)
    slab.writeInt32LE(bytes.byteLength, at + 4)
    slab.set(bytes, at + SLAB_HEADER_BYTES)
    this.#written[index] = at + need
    this.#live[index]! += need
    return index * LOCATION_SPAN + at + SLAB_HEADER_BYTES
  }

  /** A view of the value at `location`: its bytes never change, whatever happens to the cache later. */
  view(location: number, length: number): Buffer {
    const index = Math.floor(location / LOCATION_SPAN)
    const slab = this.#slabs[index]!
    this.#viewed[index] = true
    return Buffer.from(slab.buffer, slab.byteOffset + location - index * LOCATION_SPAN, length)
  }

  /** The value at `location` is no longer used: its slab is let go once empty, compacted when dead bytes pile up. */
  release(location: number, length: number): void {
    const index = Math.floor(location / LOCATION_SPAN)
    const size = SLAB_HEADER_BYTES + length
    const live = this.#live[index]! - size
    this.#live[index] = live
    if (index === this.#open) return
    this.deadBytes += size
    if (live === 0) this.#letGo(index)
    else this.#compactWhileOver()
  }

  /** Lets every slab go (the cache was cleared). */
  clear(): void {
    this.#slabs.length = 0
    this.#written.length = 0
    this.#live.length = 0
    this.#viewed.length = 0
    this.#freeIndexes.length = 0
    this.#spare.length = 0
    this.#open = -1
    this.deadBytes = 0
  }

  #openSlab(): void {
    const closed = this.#open
    const index = this.#freeIndexes.pop() ?? this.#slabs.length
    // allocUnsafeSlow: a slab of its own, never a part of Node's shared pool.
    this.#slabs[index] = this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#slabBytes)
    this.#written[index] = 0
    this.#live[index] = 0
    this.#viewed[index] = false
    this.#open = index
    if (closed < 0) return
    // A closed slab's unwritten tail is dead space too.
    this.deadBytes += this.#slabBytes - this.#live[closed]!
    if (this.#live[closed] === 0) this.#letGo(closed)
    else this.#compactWhileOver()
  }

  /** While dead bytes are over DEAD_SHARE of all slabs, compacts the closed slab with the fewest bytes in use. */
  #compactWhileOver(): void {
    if (this.#compacting) return // the outer loop checks again
    this.#compacting = true
    try {
      while (this.deadBytes > DEAD_SHARE * this.slabs * this.#slabBytes) {
        let emptiest = -1
        for (let i = 0; i < this.#slabs.length; i++) {
          if (i === this.#open || this.#slabs[i] === undefined) continue
          if (emptiest < 0 || this.#live[i]! < this.#live[emptiest]!) emptiest = i
        }
        if (emptiest < 0) return
        this.#compact(emptiest)
      }
    } finally {
      this.#compacting = false
    }
  }

  /** Copies the records still in use out of slab `index`, then lets the slab go. */
  #compact(index: number): void {
    const slab = this.#slabs[index]!
    const written = this.#written[index]!
    for (let at = 0; at < written; ) {
      const slot = slab.readInt32LE(at)
      const length = slab.readInt32LE(at + 4)
      const start = at + SLAB_HEADER_BYTES
      const location = index * LOCATION_SPAN + start
      if (this.#owner.holds(slot, location)) {
        this.#live[index]! -= SLAB_HEADER_BYTES + length
        this.deadBytes += SLAB_HEADER_BYTES + length
        this.#owner.moved(slot, this.add(slot, slab.subarray(start, start + length)))
      }
      at = start + length
    }
    this.compactions++
    this.#letGo(index)
  }

  /** Slab `index` holds no record in use: kept as a spare if no view of it was ever made, else left to the GC. */
  #letGo(index: number): void {
    const slab = this.#slabs[index]!
    this.deadBytes -= this.#slabBytes
    this.#slabs[index] = undefined
    this.#live[index] = 0
    this.#written[index] = 0
    this.#freeIndexes.push(index)
    if (!this.#viewed[index] && this.#spare.length < SPARE_SLABS) this.#spare.push(slab)
  }
}
