// Membership changes across processes: a member joining and leaving through setPeers moves only its
// share of the keys, and a graceful close() re-routes the others at once.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { GROUP, PATIENT, type HaCluster, type HaMember, haGroups, keyRange, startHaCluster, type WorkersReport } from './helpers/ha.js'

/** Runs `change` while every member in `members` keeps getting `keys` (~2 s); resolves with their reports. */
async function underLoad(members: HaMember[], keys: string[], change: () => Promise<unknown>): Promise<WorkersReport[]> {
  const running = members.map((m, i) => m.workers(GROUP, keys, { concurrency: 2, durationMs: 2000, pauseMs: 1, seed: i + 1 }))
  await sleep(300)
  await change()
  return Promise.all(running)
}

/** How many requests each member served (GET and PUT from peers). */
async function served(members: HaMember[]): Promise<number[]> {
  return Promise.all(members.map(async (m) => (await m.stats(GROUP)).serverRequests as number))
}

/** Origin loads per key that happened while `run` ran, summed over the members still running. */
async function loadsDuring(cluster: HaCluster, run: () => Promise<unknown>): Promise<Map<string, number>> {
  const before = (await cluster.loads(GROUP)).byKey
  await run()
  const delta = new Map<string, number>()
  for (const [key, n] of (await cluster.loads(GROUP)).byKey) if (n !== (before.get(key) ?? 0)) delta.set(key, n - (before.get(key) ?? 0))
  return delta
}

t.test('setPeers: a fourth member joins and leaves; only its share of the keys moves, no get fails', async (t) => {
  const cluster = await startHaCluster(t, { size: 3, groups: haGroups(2), peer: PATIENT })
  const first = [...cluster.members]
  const urls3 = cluster.urls
  const keys = keyRange('a', 400)
  const background = keyRange('w', 200) // the workers' keys: their loads do not blur the counts of `keys`
  t.equal((await first[0]!.fill(GROUP, keys)).failed, 0, 'filled on three members')
  await cluster.replicated(GROUP, keys.length)

  const [joiner] = (await cluster.start(1, urls3)) as [HaMember]
  const urls4 = cluster.urls
  const movedKeys = (ks: string[]) => ks.filter((k) => cluster.ownerOf(k, urls4) !== cluster.ownerOf(k, urls3))
  // The share on many keys, so that sampling noise does not blur it; the processes follow these rings.
  const share = movedKeys(keyRange('share', 10_000)).length / 10_000
  t.ok(share > 0.15 && share < 0.35, `about 1/4 of the keys move: ${(100 * share).toFixed(1)} %`)
  const moved = movedKeys(keys)
  t.ok(
    moved.every((k) => cluster.ownerOf(k, urls4) === joiner),
    'every moved key moved to the new member',
  )

  const joining = await underLoad(first, background, () => Promise.all(first.map((m) => m.setPeers(urls4))))
  for (const r of joining) t.equal(r.failed, 0, 'no failed get while the member joins', { errors: r.errors })
  // A member answers from its main cache the keys it owned or replicated: ask one that held none of these.
  const askedOf0 = keys.filter((k) => !holders(cluster, k, urls3).includes(first[0]!))
  const reloadedOnJoin = await loadsDuring(cluster, () => first[0]!.fill(GROUP, askedOf0))
  const movedAsked = moved.filter((k) => askedOf0.includes(k))
  t.ok(movedAsked.length > 10, `${movedAsked.length} of the keys asked moved`)
  // The new owner first peeks at its replica on the new ring: where that member held the key on the
  // old ring (as owner or replica), the copy comes from there and the origin is not asked.
  const newReplica = (k: string) => cluster.members.find((m) => m.url === cluster.ring(urls4).owners(k, 2)[1])!
  const fromReplica = movedAsked.filter((k) => holders(cluster, k, urls3).includes(newReplica(k)))
  const fromOrigin = movedAsked.filter((k) => !fromReplica.includes(k))
  t.ok(fromReplica.length > 0, `${fromReplica.length} moved keys could come from a replica, ${fromOrigin.length} from the origin`)
  t.same(
    Object.fromEntries(reloadedOnJoin),
    Object.fromEntries(fromOrigin.map((k) => [k, 1])),
    'exactly the moved keys no replica held were loaded again, once each',
  )
  t.same(
    Object.keys((await joiner.loads(GROUP)).byKey)
      .filter((k) => k.startsWith('a'))
      .sort(),
    [...fromOrigin].sort(),
    'by the new member, their owner',
  )
  // (the workers' background keys that moved count here too)
  const fills = (await joiner.stats<{ replicaFills: number }>(GROUP)).replicaFills
  t.ok(fills >= fromReplica.length, `the others were taken from the replica (${fills} replica fills)`)

  const leaving = await underLoad(first, background, () => Promise.all(first.map((m) => m.setPeers(urls3))))
  for (const r of leaving) t.equal(r.failed, 0, 'no failed get while the member leaves', { errors: r.errors })
  // first[1] held none of these on either ring: it must ask each of its owner on the three-member ring.
  const askedOf1 = keys.filter((k) => ![...holders(cluster, k, urls3), ...holders(cluster, k, urls4)].includes(first[1]!))
  t.ok(askedOf1.filter((k) => moved.includes(k)).length > 5, 'some of them had moved to the member that left')
  const servedBefore = await served(cluster.members)
  const reloadedOnLeave = await loadsDuring(cluster, () => first[1]!.fill(GROUP, askedOf1))
  const servedDelta = (await served(cluster.members)).map((n, i) => n - servedBefore[i]!)
  t.same([...reloadedOnLeave.keys()], [], 'no key was loaded again: the old owners still hold them')
  t.equal(servedDelta[3], 0, 'the member that left is asked nothing')
  for (const i of [0, 2]) {
    t.equal(servedDelta[i], cluster.keysOf(first[i]!, askedOf1, urls3).length, `${first[i]!.name} is asked for exactly its keys again`)
  }
})

/** The members holding `key` in their main cache on the ring of `urls`: its owner and replica. */
function holders(cluster: HaCluster, key: string, urls: string[]): HaMember[] {
  return cluster
    .ring(urls)
    .owners(key, 2)
    .map((url) => cluster.members.find((m) => m.url === url)!)
}

t.test('graceful close: the others route around the leaver at once, without a peer error', async (t) => {
  const cluster = await startHaCluster(t, { size: 3, groups: haGroups(2), peer: PATIENT })
  const [a, b, leaver] = cluster.members as [HaMember, HaMember, HaMember]
  const keys = keyRange('c', 300)
  const leaverKeys = cluster.keysOf(leaver, keys)
  t.equal((await a.fill(GROUP, keys)).failed, 0, 'filled')
  await cluster.replicated(GROUP, keys.length)

  // The others keep getting every key while it leaves: requests under way finish, none fails.
  const closing = await underLoad([a, b], keys, async () => {
    await leaver.close()
    for (const m of [a, b]) t.equal(await m.stateOf(leaver), 'down', `${m.name} sees the leaver down as soon as close() resolved`)
  })
  for (const r of closing) t.equal(r.failed, 0, 'no failed get while a member leaves', { errors: r.errors })
  for (const m of [a, b]) {
    const down = (await m.transitions()).find((c) => c.peer === leaver.url && c.to === 'down')
    t.match(down, { reason: 'marked-down' }, `${m.name} was told, not left to find out`)
  }
  const errorsBefore = await cluster.sumStat(GROUP, 'peerErrors')
  const reloaded = await loadsDuring(cluster, async () => {
    for (const m of [a, b]) t.equal((await m.fill(GROUP, leaverKeys)).failed, 0, `${m.name} gets every key the leaver owned`)
  })
  t.equal((await cluster.sumStat(GROUP, 'peerErrors')) - errorsBefore, 0, 'no peer error: nobody asked the leaver')
  t.same([...reloaded.keys()], [], 'no origin load: the replicas answered')
})
