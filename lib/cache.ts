// A byte-bounded LRU of entries with absolute expiry. lru-cache does the work (maxSize,
// sizeCalculation, per-entry ttl); this class fixes the accounting and counts what happens.
import { LRUCache } from 'lru-cache'
import type { WireEntry } from './protocol.js'

/** What a cache holds for a key: the value's bytes with the owner's metadata, and their decoded form. */
export interface Entry<T = unknown> extends WireEntry {
  /** The decoded value `get` returns (the bytes themselves for a bytes group). */
  readonly value: T
}

/**
 * Bytes charged per entry on top of the value and key: what Node keeps per entry besides the value
 * (the Buffer and its backing store, the entry object, lru-cache's slots). Measured on Node 20 by
 * `npm run bench -- --only memory`: about 900 bytes per 1 KiB entry in all (a plain Map of Buffers
 * alone costs about 500). Charging it keeps RSS near maxBytes: a budget that counted only value bytes
 * let a cache full of 1 KiB values use 1.7x its maxBytes.
 */
export const ENTRY_OVERHEAD_BYTES = 768

export function entrySize(key: string, bytes: Uint8Array): number {
  return bytes.byteLength + key.length + ENTRY_OVERHEAD_BYTES
}

export interface CacheStats {
  bytes: number
  items: number
  maxBytes: number
  evictions: number
  expirations: number
}

export class ByteCache<T = unknown> {
  readonly maxBytes: number
  evictions = 0
  expirations = 0
  readonly #lru: LRUCache<string, Entry<T>> | undefined

  /** How long an expired entry is kept (to be served stale while it is refreshed), in ms; 0: dropped at expiry. */
  readonly #graceMs: number

  /** `onEvict(key, entry)`: an entry was dropped for room (change events announce it). */
  constructor(maxBytes: number, graceMs = 0, onEvict?: (key: string, entry: Entry<T>) => void) {
    this.maxBytes = Math.max(0, Math.floor(maxBytes))
    this.#graceMs = graceMs
    // lru-cache needs a positive maxSize; a zero budget (e.g. hot cache turned off) stores nothing.
    this.#lru =
      this.maxBytes < 1
        ? undefined
        : new LRUCache<string, Entry<T>>({
            maxSize: this.maxBytes,
            sizeCalculation: (entry, key) => entrySize(key, entry.bytes),
            // Expiry is an absolute wall-clock time chosen by the owner, so that copies on other
            // processes expire at the same moment: lru-cache's clock must be the wall clock too.
            perf: Date,
            dispose: (value, key, reason) => {
              if (reason === 'evict') {
                this.evictions++
                onEvict?.(key, value)
              } else if (reason === 'expire') this.expirations++
            },
          })
  }

  get(key: string): Entry<T> | undefined {
    return this.#lru?.get(key)
  }

  /**
   * Stores `entry`; false when it is already expired or larger than the cache. Then any value held
   * for `key` is dropped too: it is older than `entry`, and must not be served in its place.
   */
  set(key: string, entry: Entry<T>): boolean {
    const lru = this.#lru
    if (lru === undefined) return false
    if (entrySize(key, entry.bytes) > this.maxBytes) {
      lru.delete(key)
      return false
    }
    if (entry.expiresAt === 0) {
      lru.set(key, entry)
      return true
    }
    const now = Date.now()
    const until = entry.expiresAt + this.#graceMs
    if (until <= now) {
      lru.delete(key)
      return false
    }
    lru.set(key, entry, { ttl: until - now, start: now })
    return true
  }

  delete(key: string): boolean {
    return this.#lru?.delete(key) ?? false
  }

  /** Drops every entry (a clear of the group, a resync; not counted as evictions). */
  clear(): void {
    this.#lru?.clear()
  }

  /** @internal Entries from most to least recently used (tests check the byte accounting with it). */
  *entries(): Generator<[string, Entry<T>]> {
    if (this.#lru) yield* this.#lru.entries()
  }

  stats(): CacheStats {
    return {
      bytes: this.#lru?.calculatedSize ?? 0,
      items: this.#lru?.size ?? 0,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
      expirations: this.expirations,
    }
  }
}
