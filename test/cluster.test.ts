// Three OS processes form a cluster (test/fixtures/member.mjs over test/helpers/cluster.ts):
// a thundering herd spread over every process loads once, a miss on a non-owner fills the owner,
// and an owner killed with SIGKILL under load costs no failed get.
import t from 'tap'
import { startCluster, valueHeader, type Member } from './helpers/cluster.js'
import { numberedKeys } from './helpers/peers.js'

// replicas: 1 is the core's (groupcache's) placement: the owner alone holds a key.
// hotCacheRatio: 0 keeps non-owners asking the owner on every get, so a killed owner is noticed.
const cluster = await startCluster(t, {
  size: 3,
  peer: { peerTimeoutMs: 1000, fetchTimeoutMs: 3000 },
  groups: {
    core: { options: { maxBytes: 1 << 20, replicas: 1, hotCacheRatio: 0 }, loader: { delayMs: 100 } },
    replicated: { options: { maxBytes: 1 << 20 }, loader: { delayMs: 100 } },
    steady: { options: { maxBytes: 1 << 20, replicas: 1, hotCacheRatio: 0 }, loader: { delayMs: 5 } },
  },
})
const [m0, m1, m2] = cluster.members as [Member, Member, Member]

for (const group of ['core', 'replicated']) {
  t.test(`${group}: 1000 concurrent gets of one key spread over 3 processes call the loader once`, async (t) => {
    const key = `herd-${group}`
    const shares = [334, 333, 333]
    const results = await Promise.all(cluster.members.map((m, i) => m.gets(group, Array(shares[i]).fill(key))))
    const outcomes = results.flat()
    t.equal(outcomes.length, 1000)
    t.equal(outcomes.filter((o) => !o.ok).length, 0, 'no get failed')
    const values = new Set(outcomes.map((o) => (o.ok ? o.value : '')))
    t.equal(values.size, 1, 'every process got the same value')
    const owner = cluster.ownerOf(key)
    t.equal(valueHeader([...values][0]!).by, owner.name, 'made by the owner')
    const loads = await cluster.loads(group)
    t.comment(`${group}: loader calls for 1000 concurrent gets over 3 processes: ${loads.byKey.get(key)}`)
    t.equal(loads.byKey.get(key), 1, 'one origin load in the whole cluster')
    t.equal((await owner.loads(group)).byKey[key], 1, 'at the owner')
  })
}

t.test('a miss on a non-owner goes to the owner and fills it', async (t) => {
  const key = [...numberedKeys('fill-', 1000)].find((k) => cluster.ownerOf(k) === m2)!
  const [asker, owner] = [m0, m2]
  const before = { asker: await asker.stats('core'), owner: await owner.stats('core') }
  const got = await asker.get('core', key)
  t.same(valueHeader(got.value), { v: 'v1', by: owner.name, key })
  const after = { asker: await asker.stats('core'), owner: await owner.stats('core') }
  t.equal(after.asker.peerLoads - before.asker.peerLoads, 1, 'the asker fetched it from a peer')
  t.equal(after.asker.loads, before.asker.loads, 'the asker did not load it')
  t.equal(after.owner.loads - before.owner.loads, 1, 'the owner loaded it')
  t.equal(after.owner.main.items - before.owner.main.items, 1, 'and keeps it in its main cache')
  t.equal(after.owner.serverRequests - before.owner.serverRequests, 1)
  await owner.get('core', key)
  t.equal((await owner.stats('core')).mainHits - after.owner.mainHits, 1, "the owner's own get is a main hit")
  await m1.get('core', key)
  t.equal((await owner.loads('core')).byKey[key], 1, 'a third process asking loads nothing more')
})

t.test('an owner killed with SIGKILL under load: gets fall back to local loads, none fails', async (t) => {
  const victim = m2
  const keys = [...numberedKeys('steady-', 5000)].filter((k) => cluster.ownerOf(k) === victim).slice(0, 30)
  const survivors = [m0, m1]
  const statsBefore = await Promise.all(survivors.map((m) => m.stats('steady')))
  // Each survivor gets the victim's keys in a loop (bounded: 2.5 s or 20,000 gets).
  const running = survivors.map((m) => m.load('steady', keys, { durationMs: 2500, concurrency: 4, maxGets: 20_000 }))
  // Kill once the victim is demonstrably serving that load (by count, not by time).
  for (let i = 0; i < 200 && (await victim.stats('steady')).serverRequests < 20; i++) await new Promise((r) => setTimeout(r, 20))
  t.ok((await victim.stats('steady')).serverRequests >= 20, 'the victim was serving the survivors')
  await victim.kill('SIGKILL')
  const reports = await Promise.all(running)
  for (const [i, r] of reports.entries()) {
    t.equal(r.failed, 0, `${survivors[i]!.name}: ${r.gets} gets, none failed`, { errors: r.errors })
    t.ok(r.gets > 100, `${survivors[i]!.name} kept getting`)
  }
  const statsAfter = await Promise.all(survivors.map((m) => m.stats('steady')))
  const delta = (f: 'peerErrors' | 'localLoads' | 'peerLoads') => statsAfter.reduce((sum, s, i) => sum + s[f] - statsBefore[i]![f], 0)
  t.ok(delta('peerLoads') > 0, `${delta('peerLoads')} values came from the owner before it died`)
  t.ok(delta('peerErrors') > 0, `${delta('peerErrors')} peer errors counted`)
  t.ok(delta('localLoads') > 0, `${delta('localLoads')} local loads answered instead`)
  const loads = await cluster.loads('steady')
  t.ok(
    keys.some((k) => (loads.byKey.get(k) ?? 0) > 0),
    "the survivors loaded the dead owner's keys themselves",
  )
})
