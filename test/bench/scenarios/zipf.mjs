// Skewed load: every one of 4 processes draws gets from Zipf(s = 1.1) over 100,000 keys. Without
// hot-key replicas, the owner of the few hottest keys answers most peer requests; with them
// (the default), askers keep copies of hot keys and the peer requests even out.
import { commandLinePeerOptions, startCluster, sumStats } from '../cluster.mjs'
import { stopAll } from '../procs.mjs'
import { mean } from '../stats.mjs'
import { formatTable } from '../table.mjs'

const PROCESSES = 4
const KEY_COUNT = 100_000
const S = 1.1
const CONFIGS = [
  { hotReplicas: false, group: { name: 'zipf-cold', valueBytes: 100, maxBytes: 64 * 1024 * 1024, options: { hotCacheRatio: 0 } } },
  { hotReplicas: true, group: { name: 'zipf-hot', valueBytes: 100, maxBytes: 64 * 1024 * 1024 } },
]

export async function run({ quick, log, ...options }) {
  const gets = quick ? 25_000 : 100_000
  const maxMs = quick ? 20_000 : 90_000
  const names = Array.from({ length: PROCESSES }, (_, i) => `zipf-${i}`)
  const { procs } = await startCluster(
    names,
    () => CONFIGS.map((c) => c.group),
    () => commandLinePeerOptions(options),
  )
  try {
    const rows = []
    for (const { hotReplicas, group } of CONFIGS) {
      log(`zipf: hot replicas ${hotReplicas ? 'on' : 'off'}, ${gets} gets per process`)
      const started = performance.now()
      // The same seeds in both configurations: the same sequence of keys, only the replicas differ.
      const loops = await Promise.all(
        procs.map((p, i) =>
          p.call('zipf', [{ group: group.name, keyCount: KEY_COUNT, s: S, gets, seed: i + 1, concurrency: 16, maxMs }], maxMs + 60_000),
        ),
      )
      const wallMs = performance.now() - started
      const stats = await Promise.all(procs.map((p) => p.call('stats', [group.name])))
      const served = stats.map((s) => s.serverRequests)
      const totalGets = loops.reduce((sum, l) => sum + l.ops, 0)
      const peerRequests = served.reduce((a, b) => a + b, 0)
      rows.push({
        hotReplicas,
        busiestToMean: Math.max(...served) / mean(served),
        serverRequests: served,
        peerRequestShare: peerRequests / totalGets,
        ...sumStats(stats, ['hotHits', 'dedupedLoads', 'loads', 'peerErrors', 'localLoads', 'replicaWrites']),
        gets: totalGets,
        opsPerSec: totalGets / (wallMs / 1000),
      })
    }
    return { text: table(rows), json: rows }
  } finally {
    await stopAll(procs)
  }
}

function table(rows) {
  const body = rows.map((r) => [
    r.hotReplicas ? 'on' : 'off',
    r.gets,
    r.opsPerSec,
    `${(r.peerRequestShare * 100).toFixed(1)} %`,
    r.hotHits,
    r.peerErrors,
    r.serverRequests.join(' / '),
    `${r.busiestToMean.toFixed(2)}x`,
  ])
  return formatTable(
    `Skewed load: Zipf s=${S} over ${KEY_COUNT.toLocaleString('en-US')} keys on ${PROCESSES} processes`,
    [
      'hot replicas',
      'gets',
      'gets/s',
      'peer requests / gets',
      'hot hits',
      'peer errors',
      'peer requests served per process',
      'busiest vs mean',
    ],
    body,
  )
}
