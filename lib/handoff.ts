// Hand-off on a graceful close: before a process announces that it leaves, it copies the entries it
// owns to the peers that will hold them once it is gone (the ring without it), so they start with
// the value instead of loading it from the origin. Bounded in time and bytes, most recently used
// first; a peer that already holds the key (today's replicas) is not sent it again.
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

export interface HandOffSource<T> {
  group: string
  store: Store<T>
  membership: Membership
  /** Peers holding each key, the owner included. */
  replicas: number
  /** The key's holders once this process has left (the ring without it). */
  holdersAfter(key: string, count: number): string[]
}

/** Copies the fresh entries this process owns to their holders-to-be; resolves when sent or out of budget. */
export async function handOff<T>(source: HandOffSource<T>, budget: HandOffBudget): Promise<void> {
  const { group, store, membership, replicas } = source
  const now = Date.now()
  const copies: Promise<void>[] = []
  // lru-cache lists from most to least recently used: the keys most likely asked for next go first.
  for (const [key, entry] of [...store.main.entries()]) {
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) continue
    const holders = membership.ownerAndReplicas(key, replicas)
    if (holders[0] !== membership.self) continue
    for (const peer of source.holdersAfter(key, replicas)) {
      if (holders.includes(peer)) continue // a replica today: it has the copy already
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
