// Replicas, in-process peers on loopback: the owner copies what it fills and what is set to the
// next peer on the ring, which then answers from its main cache, and answers for the owner when the
// owner is gone, with no new origin load.
import t from 'tap'
import { eventually, loaded, startGroupCluster, total } from './helpers/inproc.js'

t.test('a fill at the owner is copied to the replica, where a get is a main hit', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const [owner, replica, other] = [c.groups[0]!, c.groups[1]!, c.groups[2]!]
  t.equal(await owner.get(key), loaded(key, 1))
  await eventually(() => replica.stats().replicaWrites === 1, 'the replica received the copy')
  t.equal(replica.stats().main.items, 1, 'the copy is in the main cache')
  t.equal(other.stats().replicaWrites, 0, 'the third peer is not a replica of the key')

  t.equal(await replica.get(key), loaded(key, 1))
  const s = replica.stats()
  t.equal(s.mainHits, 1, 'the replica answered from its main cache')
  t.equal(s.peerLoads + s.loads, 0, 'without asking the owner or the origin')
  t.equal(c.origin.count(), 1, 'one origin load in the cluster')
})

t.test('fills made on behalf of other peers are copied too, one copy per key', async (t) => {
  const c = await startGroupCluster(t, 3)
  const keys = Array.from({ length: 30 }, (_, i) => `fill${i}`)
  // Every key asked for by a peer that is neither its owner nor its replica.
  for (const key of keys) await c.groups[c.roles(key).others[0]!]!.get(key)
  await eventually(() => total(c.groups, 'replicaWrites') === keys.length, 'every fill reached its replica')
  for (const key of keys) {
    const { replica } = c.roles(key)
    t.equal(await c.groups[replica]!.get(key), loaded(key, 1), `${key} at its replica`)
  }
  t.equal(c.origin.count(), keys.length, 'one origin load per key')
})

t.test("replicas: 1 keeps only the owner's copy (groupcache's behaviour)", async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 1 })
  const keys = Array.from({ length: 10 }, (_, i) => `solo${i}`)
  for (const key of keys) await c.groups[c.roles(key).owner]!.get(key)
  // A copy would be sent after the fill resolved: these round trips to the owner give one time to land.
  for (const key of keys) for (const g of c.groups) await g.get(key)
  t.equal(total(c.groups, 'replicaWrites'), 0, 'no copies were sent')
  t.equal(c.origin.count(), keys.length)
})

t.test("with the owner closed, a third peer's gets of its keys are answered by the replica, no new origin load", async (t) => {
  // Without hand-off: it would give the third peer the keys itself (test/handoff.test.ts), and the replica would not be asked.
  const c = await startGroupCluster(t, 3, {}, { handOffMs: 0 })
  const keys = Array.from({ length: 8 }, (_, i) => c.keyOf(0, 1, `owned${i}-`))
  for (const key of keys) await c.groups[0]!.get(key)
  await eventually(() => c.groups[1]!.stats().replicaWrites === keys.length, 'the replica holds every key')
  const replicaServed = c.groups[1]!.stats().serverRequests

  // Stops its server (connections are refused from now on); the asker may also have been told it left.
  await c.peers[0]!.close()
  for (const key of keys) t.equal(await c.groups[2]!.get(key), loaded(key, 1), `${key} from the replica`)

  t.equal(c.origin.count(), keys.length, 'no origin load after the owner closed')
  const asker = c.groups[2]!.stats()
  t.equal(asker.localLoads, 0, 'the asker never fell back to its own origin load')
  t.equal(c.groups[1]!.stats().serverRequests - replicaServed, keys.length, 'the replica served each key')
})

t.test('a set is copied to the replica, which keeps answering with it after the owner closed', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  await c.groups[2]!.get(key) // the original value everywhere it goes
  await eventually(() => c.groups[1]!.stats().replicaWrites === 1, 'the fill reached the replica')

  const result = await c.groups[2]!.set(key, 'set value')
  t.equal(result.owner, c.urls[0], 'stored by the owner')
  t.equal(c.groups[1]!.stats().replicaWrites, 2, 'the set was copied to the replica before set() resolved')
  t.equal(await c.groups[1]!.get(key), 'set value', 'the replica answers with the set value')

  await c.peers[0]!.close()
  t.equal(await c.groups[2]!.get(key), 'set value', 'the third peer gets the set value from the replica')
  t.equal(c.origin.count(), 1, 'the origin was asked only for the original value')
})

t.test("an owner's miss peeks at the replica only within replicaPeekMs of its start or of a change of its ring", async (t) => {
  for (const [replicaPeekMs, peeked] of [
    [undefined, true],
    [0, false],
  ] as const) {
    const c = await startGroupCluster(t, 2, {}, { replicaPeekMs })
    const key = c.keyOf(0, 1)
    // A copy that only the replica holds (the owner never saw its write: as after a restart).
    const version = Date.now() * 1000
    await c.groups[1]!.ownerSide.put(key, Buffer.from('kept by the replica'), { replica: true, version, expiresAt: 0 })
    const value = await c.groups[0]!.get(key)
    const name = replicaPeekMs === undefined ? 'by default, just after the start' : `replicaPeekMs: ${replicaPeekMs}`
    if (peeked) {
      t.equal(value, 'kept by the replica', `${name}: the replica's copy`)
      t.equal(c.groups[0]!.stats().replicaFills, 1, `${name}: counted as a replica fill`)
      t.equal(c.origin.count(), 0, `${name}: no origin load`)
    } else {
      t.equal(value, loaded(key, 1), `${name}: the origin's value, with no round trip to the replica first`)
      t.equal(c.groups[0]!.stats().replicaFills, 0, `${name}: no replica fill`)
      t.equal(c.origin.count(), 1, `${name}: one origin load`)
    }
  }
})
