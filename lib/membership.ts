// The other peers as a group sees them: which of them hold a key (the ring, routed around peers that
// failure detection says are down), how to reach them (the transport), and what their answers say
// about their health. The Peer makes one and hands it to every group; groups never see the Peer.
import type { LimitFunction } from 'p-limit'
import { PEER_DEFAULTS } from './defaults.js'
import { ClosedError, PeerUnavailableError } from './errors.js'
import type { HealthProbe, PeerHealth } from './health.js'
import type { Hint, Hints } from './hints.js'
import { HintWatch } from './hint-watch.js'
import type { PeerTransport } from './protocol.js'
import type { Readiness } from './readiness.js'
import { Ring } from './ring.js'

/** How the hint watch tries a peer with hints waiting: every 100 ms, each attempt up to 1 s, so up to 10 at once. */
const HINT_WATCH = { everyMs: 100, timeoutMs: 1000, maxAttempts: 10 }

export class Membership {
  /** This peer's URL (its identity on the ring). */
  readonly self: string
  readonly transport: PeerTransport
  /** Bounds the requests that one operation fans out (replica copies, drop broadcasts). */
  readonly limit: LimitFunction
  /** Set by the Peer when it has closed: nothing new is taken. */
  closed = false
  /** Writes that peers missed, replayed when they are seen up again. */
  readonly hints: Hints
  /** Whether the membership is known yet: gets, sets and removes that need the ring wait for it (bounded). */
  readonly readiness: Readiness
  #ring: Ring
  readonly #health: PeerHealth
  readonly #skip: (peer: string) => boolean
  /** When this peer started or its ring last changed (Date.now()). */
  #changedAt = Date.now()
  readonly #replicaPeekMs: number
  /** Notices a heal for the peers with hints waiting well before failure detection's next probe. */
  readonly #watch: HintWatch
  /** Peers a replay is under way to: one at a time each. */
  readonly #replaying = new Set<string>()
  /** Asks a peer that just took a connection whether it serves (a paused process takes them too). */
  readonly #healProbe: { probe: HealthProbe; timeoutMs: number } | undefined
  /** Heal probes under way, one per peer; aborted on close. */
  readonly #confirming = new Map<string, AbortController>()

  constructor(options: {
    self: string
    ring: Ring
    health: PeerHealth
    transport: PeerTransport
    limit: LimitFunction
    hints: Hints
    readiness: Readiness
    /** PeerOptions.replicaPeekMs. */
    replicaPeekMs?: number
    /** A health probe on connections of its own, for the hint watch (default: none, replay on connect). */
    healProbe?: { probe: HealthProbe; timeoutMs: number }
  }) {
    this.#replicaPeekMs = options.replicaPeekMs ?? PEER_DEFAULTS.replicaPeekMs
    this.#healProbe = options.healProbe
    this.hints = options.hints
    this.readiness = options.readiness
    this.self = options.self
    this.#ring = options.ring
    this.#health = options.health
    this.transport = options.transport
    this.limit = options.limit
    // A peer that is not up is skipped: its keys go to the next peer on the ring, their replica.
    this.#skip = (peer) => peer !== this.self && !this.#health.isAvailable(peer)
    this.#watch = new HintWatch({
      ...HINT_WATCH,
      // Up or not: a replay that failed leaves hints for a peer failure detection may still call up.
      wanted: (peer) => !this.closed && this.hints.pending(peer) && this.isMember(peer),
      reachable: (peer) => void this.#confirmAndReplay(peer),
    })
  }

  /**
   * Before a miss or a write: at once when the membership is known, else once it is (at most
   * readyTimeoutMs: before, this process would think itself alone); ClosedError once the Peer closed.
   */
  async untilUsable(): Promise<void> {
    if (!this.readiness.ready) await this.readiness.untilReady()
    if (this.closed) throw new ClosedError()
  }

  /** Nothing new is taken, sent or scheduled from now on (the Peer has closed). */
  close(): void {
    this.closed = true
    this.#watch.close()
    for (const ac of this.#confirming.values()) ac.abort()
  }

  /**
   * The hint watch connected to `peer`: the network is back. A probe on a fresh connection (the
   * health probes' may still wait on an attempt lost in the partition) says whether it serves; if so
   * the hints go now. One at a time per peer, so a paused peer is asked once per probe timeout.
   */
  async #confirmAndReplay(peer: string): Promise<void> {
    if (this.#confirming.has(peer) || this.closed) return
    const ac = new AbortController()
    this.#confirming.set(peer, ac)
    const timer = this.#healProbe && setTimeout(() => ac.abort(), this.#healProbe.timeoutMs)
    try {
      const ok = this.#healProbe === undefined || (await this.#healProbe.probe(peer, ac.signal).catch(() => false))
      if (ok && !this.closed) await this.replayHints(peer)
    } finally {
      clearTimeout(timer)
      this.#confirming.delete(peer)
    }
  }

  /** Every member, this one included, sorted. */
  members(): readonly string[] {
    return this.#ring.peers
  }

  /** Replaces the ring (a membership change). */
  setRing(ring: Ring): void {
    this.#ring = ring
    this.routingChanged()
  }

  /** Keys moved between peers (the ring changed, a peer went down or came back). */
  routingChanged(): void {
    this.#changedAt = Date.now()
  }

  /**
   * Whether an owner's miss should ask the key's replicas before the origin: only within
   * replicaPeekMs of this peer's start or of a change of routing could it have missed writes they kept.
   */
  mayHaveMissedWrites(): boolean {
    return Date.now() - this.#changedAt < this.#replicaPeekMs
  }

  /**
   * The key's owner followed by its replicas (up to `count` peers in all, in ring order), leaving out
   * peers known to be down: the first one that is up owns the key for now.
   */
  ownerAndReplicas(key: string, count: number): string[] {
    return this.#ring.owners(key, count, this.#skip)
  }

  /** The key's owner and replicas on the whole ring, down peers included (those a missed write is owed to). */
  ringHolders(key: string, count: number): string[] {
    return this.#ring.owners(key, count)
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

  /** Whether this peer holds `key` (owner or one of `count - 1` replicas), on the ring as it is or routed around down peers. */
  holds(key: string, count: number): boolean {
    return this.ownerAndReplicas(key, count).includes(this.self) || this.#ring.owners(key, count).includes(this.self)
  }

  /**
   * A request to `peer` failed: only silence says it may be down; an answer, even an error, says it
   * is alive. A peer that has left the membership is not tracked again (it would be probed forever).
   * A refusal of our signature (401) is the exception: such a peer is of no use until the
   * secrets agree, so it is routed around like a silent one, and health shows why.
   */
  peerFailed(peer: string, err: unknown): void {
    if (!(err instanceof PeerUnavailableError) || !this.isMember(peer)) return
    if (err.reason === 'closing') this.#health.markDown(peer)
    else if (err.reason === 'unauthorized') this.#health.failure(peer, err)
    else if (err.reason !== undefined) this.#health.success(peer)
    else this.#health.failure(peer, err)
  }

  /** Keeps a write `peer` missed (it could not be reached, or is down), for when it is back. */
  hint(peer: string, hint: Hint): void {
    if (peer === this.self || !this.isMember(peer) || this.closed) return
    this.hints.add(peer, hint)
    this.#watch.watch(peer)
  }

  /**
   * `peer` is up again: sends it the writes it missed (versions decide there, so nothing newer is
   * replaced), or, when some were given up, tells it to drop what it holds. A replay that fails is
   * kept for the next time.
   */
  async replayHints(peer: string): Promise<void> {
    if (this.#replaying.has(peer) || this.closed) return
    this.#replaying.add(peer)
    try {
      // Writes hinted while a replay ran wait for the next round; a few rounds at most.
      for (let round = 0; round < 3 && this.hints.pending(peer) && !this.closed; round++) {
        if (!(await this.#replay(peer))) break // what failed waits for the next heal
        // It answered: routed to again here, without waiting for failure detection's next probe.
        this.#health.success(peer)
      }
    } finally {
      this.#replaying.delete(peer)
    }
  }

  /** One round: sends what is waiting for `peer`; resolves whether all of it arrived (what failed waits again). */
  async #replay(peer: string): Promise<boolean> {
    const { hints, lost } = this.hints.take(peer)
    if (lost) {
      try {
        await this.transport.resync(peer)
      } catch {
        this.hints.markLost(peer) // told next time
        return false
      }
    }
    let failed = false
    await Promise.all(
      hints.map((h) =>
        this.limit(async () => {
          try {
            if (h.kind === 'drop') await this.transport.delete(peer, h.group, h.key, h.before, h.note)
            else
              await this.transport.put(peer, h.group, h.key, h.bytes, {
                replica: true,
                version: h.version,
                expiresAt: h.expiresAt,
                note: h.note,
              })
          } catch (err) {
            failed = true
            this.hints.add(peer, h)
            this.peerFailed(peer, err)
          }
        }),
      ),
    )
    return !failed
  }

  /** Something suggests `peer` may be down (a caller came here for what it owns): a probe decides. */
  check(peer: string): void {
    if (peer !== this.self && this.isMember(peer)) this.#health.check(peer)
  }

  /** `peer` answered a request. */
  peerAnswered(peer: string): void {
    this.#health.success(peer)
  }
}
