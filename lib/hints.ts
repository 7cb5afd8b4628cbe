// Hinted hand-off (as in Dynamo and Cassandra): a write that could not reach a peer (a drop after a
// set or remove, a copy to a replica) is kept here as a hint and replayed when failure detection sees
// the peer up again, so a peer that was cut off does not go on serving a value that was replaced
// meanwhile. Versions decide at the receiver, so a replay never replaces anything newer. Hints are
// bounded in count, bytes and age; when one had to be given up, the peer is marked `lost` and is told,
// when it comes back, to drop what it holds instead (it reloads from the owners and replicas).
import { HINTS_DEFAULTS } from './defaults.js'
import type { ChangeNote } from './protocol.js'

/** One write a peer missed: the newest per group and key is kept (with the change it was part of: the peer announces it when replayed). */
export type Hint = (
  | { kind: 'drop'; group: string; key: string; before: number | undefined; at: number }
  | { kind: 'copy'; group: string; key: string; bytes: Buffer; version: number; expiresAt: number; at: number }
) & { note?: ChangeNote }

/** What the hints for one peer hold when they are taken. */
export interface TakenHints {
  hints: Hint[]
  /** Some hint for this peer was given up (a bound was hit): what it holds may be stale. */
  lost: boolean
}

interface PeerHints {
  byKey: Map<string, Hint>
  lost: boolean
}

export class Hints {
  readonly #peers = new Map<string, PeerHints>()
  readonly #maxHints: number
  readonly #maxBytes: number
  readonly #maxAgeMs: number
  #count = 0
  #bytes = 0

  constructor(options: { maxHints?: number; maxBytes?: number; maxAgeMs?: number } = {}) {
    this.#maxHints = options.maxHints ?? HINTS_DEFAULTS.maxHints
    this.#maxBytes = options.maxBytes ?? HINTS_DEFAULTS.maxBytes
    this.#maxAgeMs = options.maxAgeMs ?? HINTS_DEFAULTS.maxAgeMs
  }

  /** Hints waiting, over all peers, and the bytes of the values they carry. */
  get size(): { hints: number; bytes: number } {
    return { hints: this.#count, bytes: this.#bytes }
  }

  /** Keeps `hint` for `peer` (replacing an older one for the same key), or marks the peer lost when a bound is hit. */
  add(peer: string, hint: Hint): void {
    let p = this.#peers.get(peer)
    if (p === undefined) this.#peers.set(peer, (p = { byKey: new Map(), lost: false }))
    const id = `${hint.group}\0${hint.key}`
    const held = p.byKey.get(id)
    if (held !== undefined) this.#remove(p, id, held)
    const bytes = hintBytes(hint)
    if (this.#count + 1 > this.#maxHints || this.#bytes + bytes > this.#maxBytes) {
      p.lost = true
      return
    }
    p.byKey.set(id, hint)
    this.#count++
    this.#bytes += bytes
  }

  /** Whether anything waits for `peer`: hints, or a drop-everything for hints given up. */
  pending(peer: string): boolean {
    return this.#peers.has(peer)
  }

  /** Takes every hint for `peer` (those older than maxAgeMs are given up: the peer is then lost). */
  take(peer: string, now = Date.now()): TakenHints {
    const p = this.#peers.get(peer)
    if (p === undefined) return { hints: [], lost: false }
    this.#peers.delete(peer)
    const hints: Hint[] = []
    let lost = p.lost
    for (const [id, hint] of p.byKey) {
      this.#remove(p, id, hint)
      if (now - hint.at > this.#maxAgeMs) lost = true
      else hints.push(hint)
    }
    return { hints, lost }
  }

  /** What `peer` holds may be stale beyond what hints can say: it is told to drop it all when it is back. */
  markLost(peer: string): void {
    let p = this.#peers.get(peer)
    if (p === undefined) this.#peers.set(peer, (p = { byKey: new Map(), lost: false }))
    p.lost = true
  }

  /** Drops the hints of a peer that left the membership. */
  forget(peer: string): void {
    this.take(peer)
  }

  #remove(p: PeerHints, id: string, hint: Hint): void {
    p.byKey.delete(id)
    this.#count--
    this.#bytes -= hintBytes(hint)
  }
}

function hintBytes(hint: Hint): number {
  return hint.key.length + (hint.kind === 'copy' ? hint.bytes.byteLength : 0)
}
