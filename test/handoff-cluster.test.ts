// Hand-off on close with real OS processes (test/fixtures/member.mjs): the owner of a set of keys
// leaves gracefully, and the survivors answer every one of its keys with no origin load. With
// hand-off off, the same close costs one origin load per key: the comparison shows what it saves.
import t from 'tap'
import { type Cluster, startCluster } from './helpers/cluster.js'

const GROUP = 'g'
const KEYS = 60

async function survivorLoads(cluster: Cluster, closed: string): Promise<number> {
  const counts = await Promise.all(cluster.members.filter((m) => m.name !== closed).map((m) => m.loads(GROUP)))
  return counts.reduce((sum, c) => sum + c.total, 0)
}

for (const handOffMs of [2000, 0]) {
  t.test(`replicas 1, handOffMs ${handOffMs}: a graceful close of an owner, then gets of its keys`, async (t) => {
    const cluster = await startCluster(t, {
      size: 3,
      peer: { handOffMs },
      groups: { [GROUP]: { options: { maxBytes: 16 << 20, replicas: 1 }, loader: { valueBytes: 1000 } } },
    })
    const [leaver, ...survivors] = cluster.members as [Cluster['members'][0], ...Cluster['members']]
    const keys = Array.from({ length: KEYS * 10 }, (_, i) => `k${i}`)
      .filter((k) => cluster.ownerOf(k) === leaver)
      .slice(0, KEYS)
    const filled = await leaver.gets(GROUP, keys)
    t.ok(
      filled.every((o) => o.ok),
      'the owner loaded every key',
    )
    const before = await survivorLoads(cluster, leaver.name)
    await leaver.close()
    const after = await Promise.all(survivors.map((m) => m.gets(GROUP, keys)))
    t.ok(
      after.flat().every((o) => o.ok),
      'every get answered',
    )
    const loads = (await survivorLoads(cluster, leaver.name)) - before
    if (handOffMs > 0) t.equal(loads, 0, 'no origin load for the keys of the peer that left: they were handed off')
    else t.equal(loads, keys.length, 'without hand-off: one origin load per key (the comparison)')
  })
}
