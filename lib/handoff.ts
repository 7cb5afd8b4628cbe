// Hand-off on a graceful close: before a process announces that it leaves, it copies the entries it
// holds to the peers that will hold them once it is gone (the ring without it), so they start with
// the value instead of loading it from the origin; a peer that holds the key today is not sent it
// again. And hand-back: when a peer is seen up again after it was down, the entries it should hold
// are copied to it. Both bounded in time and bytes, most recently used first.
import type { Membership } from './membership.js'
import type { PutMeta } from './protocol.js'
import type { Store } from './store.js'

/** What one hand-off may still spend, shared by every group of the Peer. */
export interface HandOffBudget {
  /** ms since the epoch after which nothing more is sent. */
  readonly deadline: number
  /** Value and key bytes that may still be sent. */
  bytesLeft: number
  /** Copies sent and acknowledged. */
  sent: number
  /** Copies that failed or were left out (deadline or bytes). */
  left: number
}

/** A group's entries and how its keys are placed. */
export interface EntrySource<T> {
  group: string
  store: Store<T>
  membership: Membership
  /** Peers holding each key, the owner included. */
  replicas: number
}

export interface HandOffSource<T> extends EntrySource<T> {
  /** The key's holders once this process has left (the ring without it). */
  holdersAfter(key: string, count: number): string[]
}

/**
 * Before this process leaves: each fresh entry it holds (as owner or replica) goes to the peers that
 * will hold it once it is gone and do not hold it today, so every key keeps its copies.
 */
export function handOff<T>(source: HandOffSource<T>, budget: HandOffBudget): Promise<void> {
  const { membership, replicas } = source
  return copyEntries(source, budget, (key) => {
    const holders = membership.ownerAndReplicas(key, replicas)
    if (!holders.includes(membership.self)) return []
    return source.holdersAfter(key, replicas).filter((peer) => !holders.includes(peer)) // today's holders have it already
  })
}

/**
 * `peer` is back after it was down (a restart, a deploy): it holds nothing, or what it held before.
 * The entries it should hold go to it, each sent by one process only: the first of the key's other
 * holders, which is this one. A rolling restart then keeps every key's copies, where without this
 * the next process to restart took the last copy of the keys the returned one no longer held.
 */
export function handBack<T>(source: EntrySource<T>, peer: string, budget: HandOffBudget): Promise<void> {
  const { membership, replicas } = source
  return copyEntries(source, budget, (key) => {
    const holders = membership.ownerAndReplicas(key, replicas)
    return holders.includes(peer) && holders.find((h) => h !== peer) === membership.self ? [peer] : []
  })
}

/** Copies each fresh entry to the peers `to` names for it, within the budget; resolves when sent or out of budget. */
async function copyEntries<T>(source: EntrySource<T>, budget: HandOffBudget, to: (key: string) => string[]): Promise<void> {
  const { group, store, membership } = source
  const now = Date.now()
  const copies: Promise<void>[] = []
  // lru-cache lists from most to least recently used: the keys most likely asked for next go first.
  for (const [key, entry] of [...store.main.entries()]) {
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) continue
    for (const peer of to(key)) {
      const size = entry.bytes.length + key.length
      if (size > budget.bytesLeft || Date.now() > budget.deadline) {
        budget.left++
        continue
      }
      budget.bytesLeft -= size
      const meta: PutMeta = { replica: true, version: entry.version, expiresAt: entry.expiresAt, absent: entry.absent }
      const copy = async () => {
        if (Date.now() > budget.deadline) return void budget.left++
        try {
          await membership.transport.put(peer, group, key, entry.bytes, meta)
          budget.sent++
        } catch (err) {
          membership.peerFailed(peer, err)
          budget.left++
        }
      }
      copies.push(membership.limit(copy))
    }
  }
  await Promise.all(copies)
}
