// lib/handoff.ts through Peer.close(): a peer that leaves gracefully first copies the entries it owns
// to the peers that will own them, so gets of its keys after it left need no origin load; within
// handOffMs and handOffBytes; and a peer that is already a holder is not sent the key again.
import t from 'tap'
import { eventually, loaded, startGroupCluster, total } from './helpers/inproc.js'

/** Fills `count` keys owned by peer 0 (asked at peer 0, so they are loaded there). */
async function fillOwnedBy0(c: Awaited<ReturnType<typeof startGroupCluster>>, count: number): Promise<string[]> {
  const keys = Array.from({ length: count * 10 }, (_, i) => `h${i}`)
    .filter((k) => c.roles(k).owner === 0)
    .slice(0, count)
  for (const key of keys) await c.groups[0]!.get(key)
  return keys
}

t.test('replicas 1: after a graceful close, gets of the leaver’s keys load nothing from the origin', async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 1 })
  const keys = await fillOwnedBy0(c, 40)
  t.equal(c.origin.count(), keys.length)
  await c.peers[0]!.close()
  for (const key of keys) {
    const asker = c.groups[1 + (key.length % 2)]!
    if ((await asker.get(key)) !== loaded(key, 1)) t.fail(`${key}: not the handed-off value`)
  }
  t.equal(c.origin.count(), keys.length, 'no origin load after the close: every key was handed off')
  t.equal(total(c.groups.slice(1), 'replicaWrites'), keys.length, 'one copy per key, to its new owner')
})

t.test('replicas 2: only the new holder that lacks a key is sent it', async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 2 })
  const keys = await fillOwnedBy0(c, 30)
  await eventually(() => total(c.groups, 'replicaWrites') === keys.length, 'the replicas have their copies')
  await c.peers[0]!.close()
  // Each key's replica (1 or 2) held it already; the third peer, its other holder-to-be, gets one copy.
  t.equal(total(c.groups.slice(1), 'replicaWrites'), 2 * keys.length, 'one more copy per key, not two')
  for (const key of keys) await c.groups[1]!.get(key)
  for (const key of keys) await c.groups[2]!.get(key)
  t.equal(c.origin.count(), keys.length, 'no origin load after the close')
})

t.test('handOffBytes bounds what is sent, most recently used first; 0 ms turns it off', async (t) => {
  const value = 'x'.repeat(1000)
  const c = await startGroupCluster(t, 2, { replicas: 1 }, { handOffBytes: 10 * 1010 })
  const keys = Array.from({ length: 200 }, (_, i) => `b${i}`)
    .filter((k) => c.roles(k).owner === 0)
    .slice(0, 30)
  for (const key of keys) await c.groups[0]!.set(key, value)
  await c.peers[0]!.close()
  const received = c.groups[1]!.stats().replicaWrites
  t.ok(received > 0 && received <= 10, `at most 10 values of 1 KiB in 10 KiB (${received} sent)`)
  t.equal(c.groups[1]!.stats().main.items, received)
  const newest = keys.slice(-received)
  t.ok(
    newest.every((k) => c.groups[1]!.ownerSide.peek(k) !== undefined),
    'the most recently set keys were sent',
  )

  const off = await startGroupCluster(t, 2, { replicas: 1 }, { handOffMs: 0 })
  const key = keys[0]!
  const owned = off.roles(key).owner === 0 ? key : keys.find((k) => off.roles(k).owner === 0)!
  await off.groups[0]!.get(owned)
  await off.peers[0]!.close()
  t.equal(off.groups[1]!.stats().replicaWrites, 0, 'handOffMs 0: nothing handed off')
})
