// A member killed with SIGKILL (kill -9): gets ride through it, and its replicas answer for its keys.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { GROUP, PATIENT, haGroups, keyRange, startHaCluster } from './helpers/ha.js'

t.test('kill -9 of a member under steady load: no get fails', async (t) => {
  const cluster = await startHaCluster(t, { size: 4, groups: haGroups(2), peer: PATIENT })
  const keys = keyRange('k', 400)
  const [victim, ...survivors] = cluster.members as [(typeof cluster.members)[0], ...typeof cluster.members]
  t.ok(cluster.keysOf(victim, keys).length > 40, 'the victim owns a share of the keys')

  // Three workers per survivor, ~3 s, random keys (loaded on first use); the kill lands at ~1 s.
  const running = survivors.map((m, i) => m.workers(GROUP, keys, { concurrency: 3, durationMs: 3000, pauseMs: 1, seed: i + 1 }))
  await sleep(1000)
  await victim.kill('SIGKILL')
  const killedAt = Date.now()
  const reports = await Promise.all(running)

  for (const [i, r] of reports.entries()) {
    t.ok(r.gets > 0 && r.endedAt > killedAt, `${survivors[i]!.name} kept getting past the kill (${r.gets} gets)`)
    t.equal(r.failed, 0, `${survivors[i]!.name}: no failed get`, { errors: r.errors })
  }
  t.ok((await cluster.sumStat(GROUP, 'peerErrors')) > 0, 'the survivors did run into the dead member, and fell back')
  for (const m of survivors) t.equal(await m.stateOf(victim), 'down', `${m.name} routes around the dead member`)
})

t.test('the replica takes over: no origin load for keys it holds', async (t) => {
  const cluster = await startHaCluster(t, { size: 4, groups: haGroups(2), peer: PATIENT })
  const keys = keyRange('r', 200)
  const [victim, ...survivors] = cluster.members as [(typeof cluster.members)[0], ...typeof cluster.members]
  const victimKeys = cluster.keysOf(victim, keys)
  t.ok(victimKeys.length > 20, `the victim owns ${victimKeys.length} keys`)

  const filled = await survivors[0]!.fill(GROUP, keys)
  t.equal(filled.failed, 0, 'the fill succeeded', { errors: filled.errors })
  await cluster.replicated(GROUP, keys.length)
  const loaded = await victim.loads(GROUP)
  t.same(loaded.byKey, Object.fromEntries(victimKeys.map((k) => [k, 1])), 'the victim loaded exactly its keys, once each')

  await victim.kill('SIGKILL')
  const before = (await cluster.loads(GROUP)).byKey
  // From a member that is neither owner nor replica: the value the dead owner loaded, copied to its replica.
  const ring = cluster.ring()
  const notTheOwners: string[] = []
  for (const key of victimKeys) {
    const holders = ring.owners(key, 2)
    const third = survivors.find((m) => !holders.includes(m.url))!
    const got = await third.get(GROUP, key)
    if (JSON.parse(got.value).by !== victim.name) notTheOwners.push(`${key} from ${third.name}: ${got.value}`)
  }
  t.same(notTheOwners, [], 'a third member gets the value the dead owner loaded')
  for (const m of survivors) {
    const r = await m.fill(GROUP, victimKeys)
    t.equal(r.failed, 0, `${m.name} got every one of the dead owner's keys`, { errors: r.errors })
  }
  const after = (await cluster.loads(GROUP)).byKey
  const reloaded = victimKeys.filter((k) => (after.get(k) ?? 0) !== (before.get(k) ?? 0))
  t.same(reloaded, [], "no origin load anywhere for the dead owner's keys")
})
