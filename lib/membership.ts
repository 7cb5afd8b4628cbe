// The other peers as a group sees them: which of them hold a key (the ring, routed around peers that
// failure detection says are down), how to reach them (the transport), and what their answers say
// about their health. The Peer makes one and hands it to every group; groups never see the Peer.
import type { LimitFunction } from 'p-limit'
import { PeerUnavailableError } from './errors.js'
import type { PeerHealth } from './health.js'
import type { PeerTransport } from './protocol.js'
import { Ring } from './ring.js'

export class Membership {
  /** This peer's URL (its identity on the ring). */
  readonly self: string
  readonly transport: PeerTransport
  /** Bounds the requests that one operation fans out (replica copies, drop broadcasts). */
  readonly limit: LimitFunction
  /** Set by the Peer when it has closed: nothing new is taken. */
  closed = false
  #ring: Ring
  readonly #health: PeerHealth
  readonly #skip: (peer: string) => boolean

  constructor(options: { self: string; ring: Ring; health: PeerHealth; transport: PeerTransport; limit: LimitFunction }) {
    this.self = options.self
    this.#ring = options.ring
    this.#health = options.health
    this.transport = options.transport
    this.limit = options.limit
    // A peer that is not up is skipped: its keys go to the next peer on the ring, their replica.
    this.#skip = (peer) => peer !== this.self && !this.#health.isAvailable(peer)
  }

  /** Every member, this one included, sorted. */
  members(): readonly string[] {
    return this.#ring.peers
  }

  /** Replaces the ring (a membership change). */
  setRing(ring: Ring): void {
    this.#ring = ring
  }

  /**
   * The key's owner followed by its replicas (up to `count` peers in all, in ring order), leaving out
   * peers known to be down: the first one that is up owns the key for now.
   */
  ownerAndReplicas(key: string, count: number): string[] {
    return this.#ring.owners(key, count, this.#skip)
  }

  /** Holders of a key once `peer` has left (the ring without it), leaving out peers known to be down. */
  holdersWithout(peer: string): (key: string, count: number) => string[] {
    const ring = new Ring(
      this.#ring.peers.filter((p) => p !== peer),
      this.#ring.vnodes,
    )
    return (key, count) => ring.owners(key, count, this.#skip)
  }

  /** Whether `peer` is a member now (a request to a peer that has left may still fail afterwards). */
  isMember(peer: string): boolean {
    return this.#ring.peers.includes(peer)
  }

  /** Whether requests go to `peer` now: it is this process, or up. */
  isUp(peer: string): boolean {
    return !this.#skip(peer)
  }

  /**
   * A request to `peer` failed: only silence says it may be down; an answer, even an error, says it
   * is alive. A peer that has left the membership is not tracked again (it would be probed forever).
   */
  peerFailed(peer: string, err: unknown): void {
    if (!(err instanceof PeerUnavailableError) || !this.isMember(peer)) return
    if (err.reason === 'closing') this.#health.markDown(peer)
    else if (err.reason !== undefined) this.#health.success(peer)
    else this.#health.failure(peer, err)
  }

  /** `peer` answered a request. */
  peerAnswered(peer: string): void {
    this.#health.success(peer)
  }
}
