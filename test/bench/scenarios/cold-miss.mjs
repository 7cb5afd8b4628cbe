// Cold miss: one get at a time of keys nobody holds yet, asked by a process that owns none of them,
// so each get is a request to the owner, which loads (an instant origin) and answers. Two owners in
// one cluster: one with the default replicaPeekMs, just started, so it first peeks at the key's
// replica (a second round trip) as a restarted owner does; one with replicaPeekMs: 0, as an owner
// long after its start (no peek). The rounds take turns, so noise falls on both alike.
import { Ring } from '../../../dist/ring.js'
import { commandLinePeerOptions, startCluster } from '../cluster.mjs'
import { stopAll } from '../procs.mjs'
import { median } from '../stats.mjs'
import { formatTable, ratio } from '../table.mjs'

const GROUP = { name: 'cold', valueBytes: 100, maxBytes: 64 * 1024 * 1024, options: { replicas: 2, hotCacheRatio: 0 } }

export async function run({ quick, log, ...options }) {
  const budget = quick ? { rounds: 3, gets: 1_000, roundMs: 800 } : { rounds: 5, gets: 4_000, roundMs: 2_000 }
  const { procs, urls } = await startCluster(
    ['coldMiss-owner-peek', 'coldMiss-owner-no-peek', 'coldMiss-asker'],
    () => [GROUP],
    (i) => ({ ...commandLinePeerOptions(options), ...(i === 1 ? { replicaPeekMs: 0 } : {}) }),
  )
  const [peekOwner, plainOwner, asker] = procs
  try {
    const ring = new Ring(urls)
    // Keys held by the two owners only (owner and replica), so the asker is neither and every get crosses the wire.
    const keysOf = (owner, other, round) => {
      const keys = []
      for (let i = 0; keys.length < budget.gets; i++) {
        const key = `c${round}:${owner}:${i}`
        const [first, second] = ring.owners(key, 2)
        if (first === urls[owner] && second === urls[other]) keys.push(key)
      }
      return keys
    }
    const contestants = [
      { name: 'owner peeks at the replica first', owner: 0, other: 1, runs: [] },
      { name: 'owner loads at once (replicaPeekMs: 0)', owner: 1, other: 0, runs: [] },
    ]
    for (let round = 0; round < budget.rounds; round++) {
      log(`coldMiss: round ${round + 1} of ${budget.rounds}`)
      for (const c of contestants) {
        const loop = {
          group: GROUP.name,
          keys: keysOf(c.owner, c.other, round),
          concurrency: 1,
          maxOps: budget.gets,
          maxMs: budget.roundMs,
        }
        c.runs.push(await asker.call('load', [loop], budget.roundMs * 3 + 60_000))
      }
    }
    await checkEveryGetWasCold({ asker, peekOwner, plainOwner })
    const rows = contestants.map((c) => ({
      contestant: c.name,
      replicaPeek: c.owner === 0,
      opsPerSec: median(c.runs.map((r) => r.opsPerSec)),
      p50Us: median(c.runs.map((r) => r.p50Us)),
      p99Us: median(c.runs.map((r) => r.p99Us)),
      ops: c.runs.reduce((sum, r) => sum + r.ops, 0),
      rounds: c.runs.length,
    }))
    return { text: table(rows), json: rows }
  } finally {
    await stopAll(procs)
  }
}

/** Every get must have been an owner's load: no hit at the asker, no replica copy taken, no peek by the plain owner. */
async function checkEveryGetWasCold({ asker, peekOwner, plainOwner }) {
  const a = await asker.call('stats', [GROUP.name])
  if (a.loads !== 0 || a.mainHits + a.hotHits !== 0 || a.peerLoads !== a.gets || a.peerErrors !== 0)
    throw new Error(`coldMiss: the asker did not fetch every key from its owner: ${JSON.stringify(a)}`)
  for (const owner of [peekOwner, plainOwner]) {
    const o = await owner.call('stats', [GROUP.name])
    if (o.replicaFills !== 0) throw new Error(`coldMiss: an owner took a replica's copy: ${JSON.stringify(o)}`)
  }
  const peeked = await peekOwner.call('stats', [GROUP.name])
  const plain = await plainOwner.call('stats', [GROUP.name])
  // Each owner is the other's replica: the peeking owner's misses reach the plain one as peeks (misses there).
  if (plain.serverMisses === 0) throw new Error('coldMiss: the peeking owner did not peek')
  if (peeked.serverMisses !== 0) throw new Error('coldMiss: the owner with replicaPeekMs: 0 peeked')
}

function table(rows) {
  const anchor = rows[1]
  const body = rows.map((r) => [r.contestant, r.opsPerSec, r.p50Us, r.p99Us, ratio(r.p50Us, anchor.p50Us)])
  return `${formatTable(
    'Cold miss: one get at a time of a key nobody holds (100 B, instant origin, replicas: 2)',
    ['owner', 'gets/s', 'p50 µs', 'p99 µs', 'p50 vs no peek'],
    body,
  )}\nfigures: the median of ${rows[0].rounds} rounds, taken in turns; a peek is one more round trip (owner to replica) before the load\n`
}
