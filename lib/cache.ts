// A byte-bounded LRU of entries with absolute expiry, lean per entry (issue 13): a key maps to a
// slot, and a slot's record lives in typed-array columns (LRU links, expiry, version, where its bytes
// are) instead of objects; values up to SLAB_VALUE_MAX_BYTES are packed into shared slabs
// (lib/slabs.ts). The budget charges what this costs in RSS, measured: see the constants below.
// Over 300 lines: the columns, the LRU links over them and the slab owner are one structure.
import type { WireEntry } from './protocol.js'
import { SLAB_BYTES, SLAB_VALUE_MAX_BYTES, SlabArena, type SlabOwner } from './slabs.js'

/** What a cache holds for a key: the value's bytes with the owner's metadata, and their decoded form. */
export interface Entry<T = unknown> extends WireEntry {
  /** The decoded value `get` returns (the bytes themselves for a bytes group). */
  readonly value: T
}

/**
 * Bytes charged per entry on top of the value and key: what its record costs, measured on Node 20
 * (`npm run bench -- --only memory`, README "Performance"): heap ~100 (its slot in the key map, the
 * key's string, its array slots), columns ~45 with their capacity slack, its slab header 8. The
 * process keeps more that the budget does not charge because it does not grow with the entries:
 * ~40-70 MiB of V8 young generation and malloc's hold on the Buffers that loads made and freed.
 */
export const ENTRY_OVERHEAD_BYTES = 160
/** Charged on top for a value kept as a Buffer of its own (larger than SLAB_VALUE_MAX_BYTES): the Buffer, its ArrayBuffer and backing store. */
export const BUFFER_OVERHEAD_BYTES = 400
/** Charged on top once a value has been returned by a hit: the Buffer view into its slab kept for the next hits. */
export const VIEW_OVERHEAD_BYTES = 160

/**
 * What an entry of `bytes` for `key` is charged when stored. A decoded form (a codec other than
 * bytes) is not charged, as before slabs: a string or object's size in the heap is not known here.
 */
export function entrySize(key: string, bytes: Uint8Array): number {
  const length = bytes.byteLength
  return length + key.length + ENTRY_OVERHEAD_BYTES + (length > SLAB_VALUE_MAX_BYTES ? BUFFER_OVERHEAD_BYTES : 0)
}

/** Whether an entry carries a decoded form besides its bytes (a codec other than bytes). */
export function isDecoded(entry: Entry<unknown>): boolean {
  return !entry.absent && entry.value !== entry.bytes
}

export interface CacheStats {
  bytes: number
  items: number
  maxBytes: number
  evictions: number
  expirations: number
}

// Flags of a slot.
const ABSENT = 1 // an absent value: no bytes
const OWN = 2 // the bytes are a Buffer of their own, in #buffers
const VIEW = 4 // #buffers holds a view into the slab, kept since a hit
const DECODED = 8 // #values holds the decoded value (a codec other than bytes)
const NONE = -1
const NO_BYTES = Buffer.alloc(0)

export class ByteCache<T = unknown> {
  readonly maxBytes: number
  evictions = 0
  expirations = 0
  /** How long an expired entry is kept (to be served stale while it is refreshed), in ms; 0: dropped at expiry. */
  readonly #graceMs: number
  readonly #onEvict: ((key: string, version: number) => void) | undefined
  readonly #slabs: SlabArena
  /** The largest value packed into a slab: a small cache has small slabs, so that one slab is a small part of it. */
  readonly #slabValueMax: number
  readonly #slots = new Map<string, number>()
  #bytes = 0
  #head = NONE // least recently used
  #tail = NONE // most recently used
  #freeSlots = NONE // a list linked through #next
  #capacity = 0
  #keys: (string | undefined)[] = []
  #buffers: (Buffer | undefined)[] = []
  #values: unknown[] = []
  #prev = new Int32Array(0)
  #next = new Int32Array(0)
  #lengths = new Int32Array(0)
  #flags = new Uint8Array(0)
  #expiresAt = new Float64Array(0)
  #versions = new Float64Array(0)
  #locations = new Float64Array(0)

  /** `onEvict(key, version)`: an entry was dropped for room (change events announce it). */
  constructor(maxBytes: number, graceMs = 0, onEvict?: (key: string, version: number) => void) {
    this.maxBytes = Math.max(0, Math.floor(maxBytes))
    this.#graceMs = graceMs
    this.#onEvict = onEvict
    const slabBytes = Math.min(SLAB_BYTES, Math.max(1024, 2 ** Math.floor(Math.log2(Math.max(1, this.maxBytes / 8)))))
    this.#slabValueMax = Math.min(SLAB_VALUE_MAX_BYTES, slabBytes / 8)
    const owner: SlabOwner = {
      holds: (slot, location) => this.#locations[slot] === location && this.#keys[slot] !== undefined,
      moved: (slot, location) => {
        this.#locations[slot] = location
        if (this.#flags[slot]! & VIEW) this.#dropView(slot)
      },
    }
    this.#slabs = new SlabArena(owner, slabBytes)
  }

  /** The hit path: the slot of a fresh (or within its grace) entry for `key`, made most recently used; -1 when none. */
  find(key: string): number {
    const slot = this.#slots.get(key)
    if (slot === undefined || this.#dropIfOver(slot)) return NONE
    this.#touch(slot)
    return slot
  }

  /** Drops the entry of `slot` if it is past its expiry and grace (counted as an expiration); whether it did. */
  #dropIfOver(slot: number): boolean {
    const expiresAt = this.#expiresAt[slot]!
    if (expiresAt === 0 || expiresAt + this.#graceMs > Date.now()) return false
    this.expirations++
    this.#remove(slot)
    return true
  }

  /** The value of a slot `find` just returned (a Buffer view kept for the next hits, for a bytes group). */
  valueAt(slot: number): T {
    const flags = this.#flags[slot]!
    if (flags & DECODED) return this.#values[slot] as T
    if (flags & ABSENT) return undefined as T
    const held = this.#buffers[slot]
    if (held !== undefined) return held as T
    const view = this.#slabs.view(this.#locations[slot]!, this.#lengths[slot]!)
    this.#buffers[slot] = view
    this.#flags[slot] = flags | VIEW
    this.#bytes += VIEW_OVERHEAD_BYTES
    this.#evictOver(slot)
    return view as T
  }

  expiresAtOf(slot: number): number {
    return this.#expiresAt[slot]!
  }

  /** The entry for `key` (made most recently used), or undefined; its bytes are a view that never changes. */
  get(key: string): Entry<T> | undefined {
    const slot = this.find(key)
    return slot === NONE ? undefined : this.#entryAt(slot)
  }

  /** The version held for `key` (an entry past its grace is dropped, as `get` does), without touching the LRU order. */
  versionOf(key: string): number | undefined {
    const slot = this.#slots.get(key)
    if (slot === undefined || this.#dropIfOver(slot)) return undefined
    return this.#versions[slot]
  }

  /**
   * Stores `entry` (its bytes are copied into a slab when small); false when it is already expired or
   * larger than the cache. Then any value held for `key` is dropped too: it is older than `entry`,
   * and must not be served in its place.
   */
  set(key: string, entry: Entry<T>): boolean {
    const held = this.#slots.get(key)
    if (held !== undefined) this.#remove(held)
    const length = entry.bytes.byteLength
    const decoded = isDecoded(entry)
    const own = !entry.absent && length > this.#slabValueMax
    const size = length + key.length + ENTRY_OVERHEAD_BYTES + (own ? BUFFER_OVERHEAD_BYTES : 0)
    if (size > this.maxBytes) return false
    if (entry.expiresAt !== 0 && entry.expiresAt + this.#graceMs <= Date.now()) return false
    const slot = this.#takeSlot()
    let flags = decoded ? DECODED : 0
    this.#locations[slot] = NONE
    if (entry.absent) flags |= ABSENT
    else if (!own) this.#locations[slot] = this.#slabs.add(slot, entry.bytes)
    else {
      flags |= OWN
      this.#buffers[slot] = entry.bytes as Buffer // callers store Buffers that own their memory (codec.ts ownBytes)
    }
    if (decoded) this.#values[slot] = entry.value
    this.#keys[slot] = key
    this.#flags[slot] = flags
    this.#lengths[slot] = length
    this.#expiresAt[slot] = entry.expiresAt
    this.#versions[slot] = entry.version
    this.#slots.set(key, slot)
    this.#link(slot)
    this.#bytes += size
    this.#evictOver(slot)
    return true
  }

  delete(key: string): boolean {
    const slot = this.#slots.get(key)
    if (slot === undefined) return false
    this.#remove(slot)
    return true
  }

  /** Drops every entry (a clear of the group, a resync; not counted as evictions). Views held elsewhere stay valid. */
  clear(): void {
    this.#slots.clear()
    this.#slabs.clear()
    this.#bytes = 0
    this.#head = this.#tail = this.#freeSlots = NONE
    this.#grow(0)
  }

  /** @internal Fresh entries (within their grace) from most to least recently used (snapshots, hand-off, tests). */
  *entries(): Generator<[string, Entry<T>]> {
    const now = Date.now()
    for (let slot = this.#tail; slot !== NONE; slot = this.#prev[slot]!) {
      const expiresAt = this.#expiresAt[slot]!
      if (expiresAt === 0 || expiresAt + this.#graceMs > now) yield [this.#keys[slot]!, this.#entryAt(slot)]
    }
  }

  stats(): CacheStats {
    return {
      bytes: this.#bytes + this.#slabs.deadBytes,
      items: this.#slots.size,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
      expirations: this.expirations,
    }
  }

  /** @internal Slabs held and compactions so far (tests). */
  slabStats(): { slabs: number; compactions: number; deadBytes: number } {
    return { slabs: this.#slabs.slabs, compactions: this.#slabs.compactions, deadBytes: this.#slabs.deadBytes }
  }

  #entryAt(slot: number): Entry<T> {
    const flags = this.#flags[slot]!
    const expiresAt = this.#expiresAt[slot]!
    const version = this.#versions[slot]!
    if (flags & ABSENT) return { value: undefined as T, bytes: NO_BYTES, expiresAt, version, absent: true }
    const bytes = this.#buffers[slot] ?? this.#slabs.view(this.#locations[slot]!, this.#lengths[slot]!)
    return { value: (flags & DECODED ? this.#values[slot] : bytes) as T, bytes, expiresAt, version }
  }

  /** @internal What the entry held for `key` is charged now (tests check the sum against stats().bytes). */
  sizeOf(key: string): number {
    const slot = this.#slots.get(key)
    return slot === undefined ? 0 : this.#sizeOf(slot)
  }

  /** What a slot is charged now. */
  #sizeOf(slot: number): number {
    const flags = this.#flags[slot]!
    const length = this.#lengths[slot]!
    let size = length + this.#keys[slot]!.length + ENTRY_OVERHEAD_BYTES
    if (flags & OWN) size += BUFFER_OVERHEAD_BYTES
    if (flags & VIEW) size += VIEW_OVERHEAD_BYTES
    return size
  }

  /** Evicts from the least recently used end until the budget holds again; `keep` (just stored or hit) stays. */
  #evictOver(keep: number): void {
    while (this.#bytes + this.#slabs.deadBytes > this.maxBytes && this.#head !== NONE && this.#head !== keep) {
      const slot = this.#head
      const key = this.#keys[slot]!
      const version = this.#versions[slot]!
      this.evictions++
      this.#remove(slot)
      this.#onEvict?.(key, version)
    }
  }

  #dropView(slot: number): void {
    this.#buffers[slot] = undefined
    this.#flags[slot]! &= ~VIEW
    this.#bytes -= VIEW_OVERHEAD_BYTES
  }

  #remove(slot: number): void {
    const key = this.#keys[slot]!
    this.#bytes -= this.#sizeOf(slot)
    this.#slots.delete(key)
    this.#unlink(slot)
    const location = this.#locations[slot]!
    this.#keys[slot] = undefined
    this.#buffers[slot] = undefined
    this.#values[slot] = undefined
    this.#locations[slot] = NONE
    this.#next[slot] = this.#freeSlots
    this.#freeSlots = slot
    // Last: a compaction this starts moves the other records of the slab, never this one.
    if (location !== NONE) this.#slabs.release(location, this.#lengths[slot]!)
  }

  #touch(slot: number): void {
    if (slot === this.#tail) return
    this.#unlink(slot)
    this.#link(slot)
  }

  /** Links `slot` at the most recently used end. */
  #link(slot: number): void {
    this.#prev[slot] = this.#tail
    this.#next[slot] = NONE
    if (this.#tail === NONE) this.#head = slot
    else this.#next[this.#tail] = slot
    this.#tail = slot
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!
    const next = this.#next[slot]!
    if (prev === NONE) this.#head = next
    else this.#next[prev] = next
    if (next === NONE) this.#tail = prev
    else this.#prev[next] = prev
  }

  #takeSlot(): number {
    if (this.#freeSlots === NONE) {
      const from = this.#capacity
      this.#grow(Math.max(64, from * 2))
      // The new slots, linked as free ones (lowest first).
      for (let slot = this.#capacity - 1; slot >= from; slot--) {
        this.#next[slot] = this.#freeSlots
        this.#freeSlots = slot
      }
    }
    const slot = this.#freeSlots
    this.#freeSlots = this.#next[slot]!
    return slot
  }

  /** Resizes the columns to `capacity` slots, keeping what the first ones hold (0: lets everything go). */
  #grow(capacity: number): void {
    const keep = Math.min(capacity, this.#capacity)
    const resized = <A extends Int32Array | Uint8Array | Float64Array>(old: A, make: (n: number) => A): A => {
      const fresh = make(capacity)
      fresh.set(old.subarray(0, keep))
      return fresh
    }
    this.#prev = resized(this.#prev, (n) => new Int32Array(n))
    this.#next = resized(this.#next, (n) => new Int32Array(n))
    this.#lengths = resized(this.#lengths, (n) => new Int32Array(n))
    this.#flags = resized(this.#flags, (n) => new Uint8Array(n))
    this.#expiresAt = resized(this.#expiresAt, (n) => new Float64Array(n))
    this.#versions = resized(this.#versions, (n) => new Float64Array(n))
    this.#locations = resized(this.#locations, (n) => new Float64Array(n))
    for (const column of [this.#keys, this.#buffers, this.#values]) {
      column.length = keep
      for (let i = keep; i < capacity; i++) column.push(undefined)
    }
    this.#capacity = capacity
  }
}
