// What one process holds for a group: the main cache (keys it owns or replicates), the hot cache
// (copies of other owners' hot keys), and recent removals (tombstones), so that a late write of an
// older version can never bring a removed or overwritten value back.
import { LRUCache } from 'lru-cache'
import { ByteCache, type CacheStats, type Entry } from './cache.js'

/**
 * How long a removal is remembered, in ms. A write older than the removal must arrive within this
 * to be refused: a replica copy or drop is bounded by peerTimeoutMs, a set or a fetch by
 * fetchTimeoutMs (5 s by default); 60 s covers both unless those are raised past it.
 */
const TOMBSTONE_TTL_MS = 60_000
const TOMBSTONE_MAX = 100_000

export class Store<T> {
  readonly main: ByteCache<T>
  readonly hot: ByteCache<T>
  readonly #tombstones = new LRUCache<string, number>({ max: TOMBSTONE_MAX, ttl: TOMBSTONE_TTL_MS, perf: Date })
  #version = 0
  /** Versions up to this one were cleared (group.clear()): refused from now on. */
  #clearedUpTo = -1

  /** `graceMs`: how long expired entries stay, to be served stale while they are refreshed; `onEvict`: an entry dropped for room. */
  constructor(mainBytes: number, hotBytes: number, graceMs = 0, onEvict?: (key: string, version: number) => void) {
    this.main = new ByteCache<T>(mainBytes, graceMs, onEvict)
    this.hot = new ByteCache<T>(hotBytes, graceMs, onEvict)
  }

  /** A fresh entry for `key` (main, then hot), or undefined: an entry past its expiry is not fresh. */
  fresh(key: string): Entry<T> | undefined {
    const entry = this.main.get(key) ?? this.hot.get(key)
    return entry !== undefined && (entry.expiresAt === 0 || entry.expiresAt > Date.now()) ? entry : undefined
  }

  /**
   * A version for a new value written here: larger than every version this store has seen (a
   * Lamport clock, so an owner whose clock runs behind a previous owner's still writes newer
   * versions), and following the wall clock in µs, so it keeps growing across restarts.
   */
  nextVersion(): number {
    this.#version = Math.max(this.#version + 1, Date.now() * 1000)
    return this.#version
  }

  #observe(version: number): void {
    if (version > this.#version) this.#version = version
  }

  /**
   * Stores `entry` unless something newer is known: a held entry of a higher version, or a removal
   * after it was made. Returns whether it was stored.
   */
  put(key: string, entry: Entry<T>, where: 'main' | 'hot'): boolean {
    this.#observe(entry.version)
    if (entry.version <= this.#clearedUpTo) return false
    const removedAt = this.#tombstones.get(key)
    if (removedAt !== undefined && entry.version <= removedAt) return false
    const held = this.main.versionOf(key) ?? this.hot.versionOf(key)
    if (held !== undefined && held > entry.version) return false
    if (where === 'main') {
      this.hot.delete(key)
      return this.main.set(key, entry)
    }
    this.main.delete(key)
    return this.hot.set(key, entry)
  }

  /**
   * Drops the copies of `key` older than `before` (every copy when it is omitted: a remove) and
   * remembers that, so that older writes still in transit are refused when they arrive. Returns the
   * tombstone: the newest version refused from now on.
   */
  remove(key: string, before?: number): number {
    let line = before === undefined ? this.nextVersion() : before - 1
    for (const cache of [this.main, this.hot]) {
      const held = cache.versionOf(key)
      if (held === undefined) continue
      // A remove drops every copy, even one versioned by an owner whose clock runs ahead of ours,
      // and then refuses that version too when it arrives again.
      if (before === undefined) line = Math.max(line, held)
      if (held <= line) cache.delete(key)
    }
    this.#observe(line)
    const held = this.#tombstones.get(key) ?? -1
    if (held >= line) return held
    this.#tombstones.set(key, line)
    return line
  }

  /**
   * Drops every entry, main and hot, and refuses versions up to `epoch` from now on (writes made
   * before the clear and still in transit). Every entry held is dropped, even one versioned by an
   * owner whose clock runs ahead of `epoch`: it was written before the clear arrived here. The clock
   * moves past `epoch`, so a value written here afterwards is newer. Returns the cleared line.
   */
  clear(epoch: number): number {
    this.main.clear()
    this.hot.clear()
    this.#observe(epoch)
    if (epoch > this.#clearedUpTo) this.#clearedUpTo = epoch
    return this.#clearedUpTo
  }

  /** Drops every value held, main and hot; tombstones stay (they still refuse older writes). */
  dropAll(): void {
    this.main.clear()
    this.hot.clear()
  }

  stats(): { main: CacheStats; hot: CacheStats } {
    return { main: this.main.stats(), hot: this.hot.stats() }
  }
}
