// The consistent-hash ring: every peer is placed at `vnodes` points on a 32-bit circle, and a key
// belongs to the first point clockwise from the key's hash. Adding or removing one of N peers moves
// only the keys of its arcs, about 1/N of them.
import { PEER_DEFAULTS } from './defaults.js'
import { h32 } from './hash.js'

/** xxHash32 of a string's UTF-8 bytes: the ring's hash for keys and virtual nodes. */
export function hashKey(key: string, seed = 0): number {
  return h32(key, seed)
}

/** The size of the hash circle: hashes are 32-bit. */
const CIRCLE = 2 ** 32

/** Points are numbered below this (2^21), which bounds peers × vnodes. (How the default of vnodes was chosen: README, "Defaults".) */
const INDEX_SPAN = 2 ** 21

/** One stretch of the ring's circle (`Ring.arcs`): hashes in `from < h <= to`, wrapping past 2^32 when `to <= from`. */
export interface RingArc {
  from: number
  to: number
  peer: string
}

/** The share of the 32-bit keyspace an arc covers, from 0 to 1 (a lone arc, `from === to`, covers it all). */
export function arcShare(arc: RingArc): number {
  const span = (arc.to - arc.from + CIRCLE) % CIRCLE
  return (span === 0 ? CIRCLE : span) / CIRCLE
}

export class Ring {
  /** The distinct peers on the ring, sorted, so every process sees the same list whatever order it was given. */
  readonly peers: readonly string[]
  readonly vnodes: number
  readonly #points: Uint32Array
  readonly #owners: Uint32Array

  constructor(peers: Iterable<string>, vnodes: number = PEER_DEFAULTS.vnodes) {
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > 10_000)
      throw new RangeError(`vnodes must be an integer from 1 to 10000, got ${vnodes}`)
    this.peers = [...new Set(peers)].sort()
    this.vnodes = vnodes
    const n = this.peers.length * vnodes
    if (n >= INDEX_SPAN) throw new RangeError(`peers × vnodes must stay under ${INDEX_SPAN}, got ${n}`)
    // Each point packed as hash × 2^21 + its index (exact in a double), so one numeric sort without
    // a comparator orders the ring. Colliding points (same hash) are then ordered by peer index, which
    // comes from the sorted peer list: every process resolves a collision the same way.
    const packed = new Float64Array(n)
    for (let p = 0; p < this.peers.length; p++) {
      for (let v = 0; v < vnodes; v++) {
        const i = p * vnodes + v
        packed[i] = hashKey(`${this.peers[p]}#${v}`) * INDEX_SPAN + i
      }
    }
    packed.sort()
    this.#points = new Uint32Array(n)
    this.#owners = new Uint32Array(n)
    for (let j = 0; j < n; j++) {
      const i = packed[j]! % INDEX_SPAN
      this.#points[j] = (packed[j]! - i) / INDEX_SPAN
      this.#owners[j] = Math.floor(i / vnodes)
    }
  }

  /**
   * Up to `count` distinct peers for `key` in ring order: the owner first, then its successors
   * (where replicas live). `skip` leaves peers out, e.g. those known to be down.
   */
  owners(key: string, count: number, skip?: (peer: string) => boolean): string[] {
    const out: string[] = []
    const total = this.#points.length
    if (total === 0 || count < 1) return out
    const seen: number[] = [] // a few peers at most: a small array beats a per-call table
    const wanted = Math.min(count, this.peers.length)
    const distinct = this.peers.length
    // Stops once it has `wanted` peers, or has met every peer (the rest of the circle holds no new one:
    // with most peers skipped, walking on would visit every point for nothing).
    for (let i = this.#index(hashKey(key)), steps = 0; steps < total && out.length < wanted && seen.length < distinct; steps++) {
      const p = this.#owners[i]!
      i = i + 1 === total ? 0 : i + 1
      if (seen.includes(p)) continue
      seen.push(p)
      const peer = this.peers[p]!
      if (!skip?.(peer)) out.push(peer)
    }
    return out
  }

  /**
   * The circle cut into arcs, clockwise from 0: the keys whose hash h has `from < h <= to` belong to
   * `peer`; the first arc wraps around (its `from` is the last arc's `to`), and one arc alone is the
   * whole circle. Neighbouring points of one peer make one arc. For views of the ring and each peer's
   * share of the keyspace (`arcShare`); the routing never uses it.
   */
  arcs(): RingArc[] {
    const ends: { to: number; peer: string }[] = []
    const n = this.#points.length
    for (let j = 0; j < n; j++) {
      const owner = this.#owners[j]!
      // The last point of a run of one owner ends its arc.
      if (j + 1 < n && this.#owners[j + 1] === owner) continue
      ends.push({ to: this.#points[j]!, peer: this.peers[owner]! })
    }
    // The keys past the last point wrap to the first arc: when both have one owner they are one arc.
    if (ends.length > 1 && ends.at(-1)!.peer === ends[0]!.peer) ends.pop()
    return ends.map((e, i) => ({ from: ends.at(i - 1)!.to, to: e.to, peer: e.peer }))
  }

  /** First point at or after `h`, wrapping to 0. */
  #index(h: number): number {
    const points = this.#points
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid]! < h) lo = mid + 1
      else hi = mid
    }
    return lo === points.length ? 0 : lo
  }
}
