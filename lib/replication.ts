// Replication: the owner of a key keeps copies on the next `replicas - 1` peers of the ring, which
// take over at once when it dies; an owner that misses (it restarted, or just became the owner)
// takes a replica's copy before it asks the origin; and a write drops older copies everywhere else.
import type { Entry } from './cache.js'
import { type Codec, decodeEntry, ownBytes } from './codec.js'
import type { CallState } from './flight.js'
import type { Hint } from './hints.js'
import type { Membership } from './membership.js'
import { PeerUnavailableError } from './errors.js'
import type { SetResult } from './options.js'
import type { ChangeNote, PutMeta, Stored, WireEntry, WriteCondition } from './protocol.js'
import type { Store } from './store.js'

/** A failed replica copy is tried again after this long, in ms, at most this many at a time. */
const COPY_RETRY_MS = 2000
const MAX_COPY_RETRIES = 10_000

/** What a broadcast of drops reached. */
export interface Reach {
  acknowledged: string[]
  unreachable: string[]
}

export interface ReplicationOptions<T> {
  group: string
  membership: Membership
  store: Store<T>
  codec: Codec<T>
  /** Peers holding each key, the owner included. */
  replicas: number
  /** Drops `key` in this process (copies older than `before`); returns the tombstone version. */
  dropHere(key: string, before: number | undefined, note: ChangeNote | undefined): number
  /** Clears the group in this process up to `epoch`; returns the cleared line. */
  clearHere(epoch: number): number
  /** A set that this process owns: stores it (if `condition` holds) and copies it to the replicas. */
  storeHere(
    key: string,
    bytes: Buffer,
    ttlMs: number | undefined,
    absent: boolean,
    condition: WriteCondition | undefined,
    note: ChangeNote,
  ): Promise<Stored>
  /** Counts an owner's miss answered by a replica's copy. */
  onReplicaFill(): void
}

export class Replication<T> {
  readonly #o: ReplicationOptions<T>
  /** Copies waiting to be tried again, cleared on close. */
  readonly #retries = new Set<NodeJS.Timeout>()

  constructor(options: ReplicationOptions<T>) {
    this.#o = options
  }

  /** The key's owner, then its replicas, leaving out peers that are down. */
  holders(key: string): string[] {
    return this.#o.membership.ownerAndReplicas(key, this.#o.replicas)
  }

  /**
   * At the owner, before the origin: a replica may still hold the key, and a peek there costs a
   * round trip where the origin costs a load. Asked only while the owner may have missed writes
   * (membership.mayHaveMissedWrites: it started or its ring changed within replicaPeekMs); else a
   * cold miss would pay the round trip for nothing. The copy is kept only if nothing newer is known here
   * (a tombstone, a set); then undefined, and the origin decides.
   */
  async copyFromReplica(key: string, call: CallState): Promise<Entry<T> | undefined> {
    const { membership, store, codec, group } = this.#o
    const holders = this.holders(key)
    if (holders[0] !== membership.self || holders.length < 2 || !membership.mayHaveMissedWrites()) return undefined
    for (const peer of holders.slice(1)) {
      let found: WireEntry | undefined
      try {
        found = await membership.transport.peek(peer, group, key)
      } catch (err) {
        if (call.aborted) throw err
        membership.peerFailed(peer, err)
        continue
      }
      membership.peerAnswered(peer)
      if (found === undefined) continue
      const entry = decodeEntry(codec, group, key, { ...found, bytes: ownBytes(found.bytes) })
      if (call.forgotten || !store.put(key, entry, 'main')) return undefined
      this.#o.onReplicaFill()
      return entry
    }
    return undefined
  }

  /**
   * Keeps a value made here: in the main cache if this process owns or replicates the key, else as
   * a hot copy. The owner also copies it to the replicas (bounded by the fan-out limit); the promise
   * resolves with the replicas that could not be reached. `note`: the set this value is (a load's has none).
   */
  async keep(key: string, entry: Entry<T>, note?: ChangeNote): Promise<string[]> {
    if (this.#o.membership.closed) return [] // a late result after close is cached nowhere
    const holders = this.holders(key)
    const self = this.#o.membership.self
    const mine = holders.length === 0 || holders.includes(self)
    if (!this.#o.store.put(key, entry, mine ? 'main' : 'hot') || holders[0] !== self) return []
    // A replica that is down is owed the copy when it is back: else, the owner's replica once more, it
    // would serve the value this one replaced (a set during a partition) until the key expires.
    const missed = this.#hintDownReplicas(key, entry, holders, note)
    if (holders.length < 2) return missed
    const failed = await Promise.all(holders.slice(1).map((peer) => this.#copyTo(peer, key, entry, true, note)))
    return [...missed, ...failed.filter((p): p is string => p !== undefined)]
  }

  /** Hints a copy of `entry` to each of the key's holders on the whole ring that is down (not among `holders`); returns them. */
  #hintDownReplicas(key: string, entry: Entry<T>, holders: string[], note: ChangeNote | undefined): string[] {
    const { membership, group } = this.#o
    const missed = membership.ringHolders(key, this.#o.replicas).filter((p) => p !== membership.self && !holders.includes(p))
    if (entry.absent) return missed // hints carry values only; an absent one is reloaded there
    for (const peer of missed) membership.hint(peer, copyHint(group, key, entry, note))
    return missed
  }

  /**
   * Copies an entry to a replica; resolves with the peer when it failed. A failed copy is tried once
   * more a little later (a busy peer may have missed peerTimeoutMs) if this process still owns the
   * same entry then, so that a replica is not left without the key it should take over.
   */
  async #copyTo(peer: string, key: string, entry: Entry<T>, retry: boolean, note: ChangeNote | undefined): Promise<string | undefined> {
    const { membership, group } = this.#o
    const meta: PutMeta = { replica: true, version: entry.version, expiresAt: entry.expiresAt, absent: entry.absent, note }
    try {
      await membership.limit(() => membership.transport.put(peer, group, key, entry.bytes, meta))
      return undefined
    } catch (err) {
      membership.peerFailed(peer, err)
      membership.hint(peer, copyHint(group, key, entry, note))
      if (retry && this.#retries.size < MAX_COPY_RETRIES) this.#retryLater(peer, key, entry, note)
      return peer
    }
  }

  #retryLater(peer: string, key: string, entry: Entry<T>, note: ChangeNote | undefined): void {
    const timer = setTimeout(() => {
      this.#retries.delete(timer)
      const holders = this.holders(key)
      const stillMine = this.#o.store.main.versionOf(key) === entry.version && holders[0] === this.#o.membership.self
      if (stillMine && holders.includes(peer)) void this.#copyTo(peer, key, entry, false, note)
    }, COPY_RETRY_MS).unref()
    this.#retries.add(timer)
  }

  /** Drops the copies waiting to be retried (the peer is closing). */
  close(): void {
    for (const timer of this.#retries) clearTimeout(timer)
    this.#retries.clear()
  }

  /**
   * A set: stored at the key's owner (or, when it cannot be reached, the first replica that can),
   * which copies it to the replicas after it; then every other member drops its older copies, the
   * holders that failed included (they may only be cut off). Rejects with the last
   * PeerUnavailableError when no holder could be reached (then nothing changed), with ConflictError
   * when the holder that answered refused the `condition` (nothing changed either).
   */
  async writeEverywhere(
    key: string,
    bytes: Buffer,
    ttlMs: number | undefined,
    absent: boolean,
    condition?: WriteCondition,
  ): Promise<SetResult> {
    const { membership, group } = this.#o
    const holders = this.holders(key)
    const candidates = holders.length ? holders : [membership.self]
    const note: ChangeNote = { kind: 'set', origin: membership.self }
    let lastError: unknown
    for (const [i, peer] of candidates.entries()) {
      let stored: Stored
      try {
        stored =
          peer === membership.self
            ? await this.#o.storeHere(key, bytes, ttlMs, absent, condition, note)
            : await membership.transport.put(peer, group, key, bytes, { replica: false, ttlMs, absent, condition, note })
      } catch (err) {
        if (!(err instanceof PeerUnavailableError)) throw err
        membership.peerFailed(peer, err)
        lastError = err
        continue
      }
      // A holder that is down gets the value itself when it is back, not only a drop: as the key's
      // owner it would otherwise reload it from the origin and write over the set (its load is newer).
      const value = absent ? undefined : { bytes, expiresAt: stored.expiresAt }
      const rest = await this.dropEverywhereBut(
        new Set(candidates.slice(i)),
        key,
        stored.version,
        { ...note, expiresAt: stored.expiresAt },
        value,
      )
      const unreachable = [...new Set([...stored.unreachable, ...rest.unreachable])]
      return { owner: peer, version: stored.version, expiresAt: stored.expiresAt, unreachable }
    }
    throw lastError
  }

  /**
   * A remove: at the owner first (once it has dropped the value, no peer can fetch the old one
   * again), then every other member drops what is not newer than the owner's tombstone, so every
   * peer refuses the same versions whatever its own clock says (all, if the owner was unreachable).
   */
  async removeEverywhere(key: string): Promise<Reach> {
    const { membership } = this.#o
    const owner = membership.ownerAndReplicas(key, 1)[0] ?? membership.self
    const note: ChangeNote = { kind: 'remove', origin: membership.self }
    const first = await this.dropAt(owner, key, undefined, note)
    const before = first.tombstone === undefined ? undefined : first.tombstone + 1
    const rest = await this.dropEverywhereBut(new Set([owner]), key, before, note)
    return { acknowledged: [...first.acknowledged, ...rest.acknowledged], unreachable: [...first.unreachable, ...rest.unreachable] }
  }

  /**
   * Drops copies of `key` (older than `before`) on every member outside `skip`, in parallel, bounded.
   * Peers known to be down are not waited on: they are unreachable at once.
   */
  async dropEverywhereBut(
    skip: Set<string>,
    key: string,
    before: number | undefined,
    note: ChangeNote,
    value?: { bytes: Buffer; expiresAt: number },
  ): Promise<Reach> {
    const { membership, group } = this.#o
    const peers = membership.members().filter((p) => !skip.has(p))
    const down = peers.filter((p) => !membership.isUp(p))
    const up = peers.filter((p) => membership.isUp(p))
    // With the value of a set (version `before`), the key's holders on the whole ring get it back as a copy.
    const holders = value && before !== undefined ? membership.ringHolders(key, this.#o.replicas) : []
    for (const p of down) {
      const at = Date.now()
      if (value && before !== undefined && holders.includes(p))
        membership.hint(p, { kind: 'copy', group, key, bytes: value.bytes, version: before, expiresAt: value.expiresAt, at, note })
      else membership.hint(p, { kind: 'drop', group, key, before, at, note })
    }
    const results = await Promise.all(up.map((p) => membership.limit(() => this.dropAt(p, key, before, note))))
    return { acknowledged: results.flatMap((r) => r.acknowledged), unreachable: [...down, ...results.flatMap((r) => r.unreachable)] }
  }

  /** Drops `key` at one peer; `tombstone` is that peer's tombstone version when it answered. */
  async dropAt(peer: string, key: string, before: number | undefined, note: ChangeNote): Promise<Reach & { tombstone?: number }> {
    const { membership, group } = this.#o
    const tombstone = await this.#ask(
      peer,
      () => this.#o.dropHere(key, before, note),
      () => membership.transport.delete(peer, group, key, before, note),
    )
    if (tombstone !== undefined) return { acknowledged: [peer], unreachable: [], tombstone }
    membership.hint(peer, { kind: 'drop', group, key, before, at: Date.now(), note })
    return { acknowledged: [], unreachable: [peer] }
  }

  /**
   * Clears the group on every member (this one included), in parallel, bounded: entries up to
   * `epoch` are refused afterwards. Peers known to be down are not waited on: unreachable at once.
   */
  async clearEverywhere(epoch: number): Promise<Reach> {
    const { membership, group } = this.#o
    const peers = membership.members()
    const reach: Reach = { acknowledged: [], unreachable: peers.filter((p) => !membership.isUp(p)) }
    // A member that misses a clear is told to drop everything when it is back (a resync).
    const missed = () => {
      for (const p of reach.unreachable) membership.hints.markLost(p)
    }
    const clearAt = async (peer: string) => {
      const line = await this.#ask(
        peer,
        () => this.#o.clearHere(epoch),
        () => membership.transport.clear(peer, group, epoch),
      )
      ;(line === undefined ? reach.unreachable : reach.acknowledged).push(peer)
    }
    await Promise.all(peers.filter((p) => membership.isUp(p)).map((p) => membership.limit(() => clearAt(p))))
    missed()
    return reach
  }

  /** Runs `here` for this process, `there` for another peer; undefined when that peer could not be reached. */
  async #ask(peer: string, here: () => number, there: () => Promise<number>): Promise<number | undefined> {
    if (peer === this.#o.membership.self) return here()
    try {
      return await there()
    } catch (err) {
      this.#o.membership.peerFailed(peer, err)
      return undefined
    }
  }
}

/** The hint that owes `entry` to a peer that did not get it. */
function copyHint(group: string, key: string, entry: Entry<unknown>, note: ChangeNote | undefined): Hint {
  return { kind: 'copy', group, key, bytes: entry.bytes, version: entry.version, expiresAt: entry.expiresAt, at: Date.now(), note }
}
