// lib/handoff.ts through Peer.close(): a peer that leaves gracefully first copies the entries it holds
// to the peers that will hold them, so gets of its keys after it left need no origin load; within
// handOffMs and handOffBytes; and a peer that is already a holder is not sent the key again. And
// hand-back: a peer seen up again after it was down gets the entries it should hold.
import t from 'tap'
import { Peer } from '../lib/index.js'
import { GROUP, eventually, loaded, startGroupCluster, total } from './helpers/inproc.js'

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

t.test('replicas 2: a leaving replica hands off the keys it replicates too, to the holder-to-be that lacks them', async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 2 })
  // Keys owned by peer 1 and replicated at peer 0: once 0 leaves, their holders are 1 and 2.
  const keys = Array.from({ length: 400 }, (_, i) => `r${i}`)
    .filter((k) => c.roles(k).owner === 1 && c.roles(k).replica === 0)
    .slice(0, 20)
  for (const key of keys) await c.groups[1]!.get(key)
  await eventually(() => c.groups[0]!.stats().replicaWrites === keys.length, 'peer 0 holds the copies')
  await c.peers[0]!.close()
  t.equal(c.groups[2]!.stats().replicaWrites, keys.length, 'peer 2, their new replica, got one copy each')
  t.equal(c.groups[2]!.stats().main.items, keys.length)
})

t.test('hand-back: a peer back after it was down gets the entries it holds, and answers them from its own cache', async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 2 })
  // Keys owned by each peer, filled at their owners: peer 0 holds those it owns or replicates.
  const keys = Array.from({ length: 90 }, (_, i) => `back${i}`)
  for (const key of keys) await c.groups[c.roles(key).owner]!.get(key)
  const held = keys.filter((k) => c.roles(k).owner === 0 || c.roles(k).replica === 0)
  await eventually(() => c.groups[0]!.stats().main.items === held.length, 'peer 0 holds its keys')
  const loads = c.origin.count()
  // Peer 0 restarts: it leaves (the others mark it down) and a new process takes its URL, empty.
  await c.peers[0]!.close()
  const restarted = new Peer({ self: c.urls[0]!, peers: c.urls })
  t.teardown(() => restarted.close())
  await restarted.listen({ port: Number(new URL(c.urls[0]!).port), host: '127.0.0.1' })
  const g = restarted.group(GROUP, { maxBytes: 1 << 20, codec: 'string', replicas: 2, load: () => 'reloaded' })
  await eventually(() => g.stats().main.items === held.length, 'the others saw it up and handed its entries back')
  for (const key of held) t.equal(await g.get(key), loaded(key, 1), key)
  t.equal(g.stats().mainHits, held.length, 'every get answered from its own main cache: no replica peek, no fetch')
  t.equal(c.origin.count(), loads, 'no origin load')
  t.equal(g.stats().replicaWrites, held.length, 'one copy of each, from one sender')
})
