// Remote hit: process B gets values that process A owns and already holds, with B's hot cache off
// and one replica per key (A's alone), so every get crosses the wire. Against the same GETs from
// Redis through ioredis (default settings, and enableAutoPipelining). A third process, with
// batching off (maxBatchKeys: 1), shows what batching is worth. Contestants take turns at each
// setting, so that noise from the shared machine falls on all of them alike.
import { Ring } from '../../../dist/ring.js'
import { commandLinePeerOptions, startCluster } from '../cluster.mjs'
import { startRole, stopAll } from '../procs.mjs'
import { ensureRedis, startRedis } from '../redis-server.mjs'
import { median } from '../stats.mjs'
import { formatTable, ratio } from '../table.mjs'

const MiB = 1024 * 1024
const VALUE_SIZES = [100, 10 * 1024]
const CONCURRENCY = [1, 16, 64]
/** Distinct keys per value size: enough that concurrent gets never share a key (no singleflight help). */
const KEY_COUNT = { 100: 10_000, 10240: 2_000 }
const ANCHOR = 'ioredis'

export async function run({ quick, install, log, ...options }) {
  const budget = quick ? { rounds: 3, roundMs: 800, maxOps: 200_000, warmupMs: 400 } : { rounds: 5, roundMs: 2_000, maxOps: 1_000_000, warmupMs: 1_000 }
  const redis = ensureRedis({ install })
  if (redis.missing) log(redis.missing)
  const groups = VALUE_SIZES.map((size) => ({ name: `v${size}`, valueBytes: size, maxBytes: 256 * MiB, options: { replicas: 1 } }))
  const askerGroups = groups.map((g) => ({ ...g, options: { ...g.options, hotCacheRatio: 0 } }))
  const { procs, urls } = await startCluster(['remoteHit-owner', 'remoteHit-asker', 'remoteHit-asker-unbatched'], (i) => (i === 0 ? groups : askerGroups),
    (i) => ({ ...commandLinePeerOptions(options), ...(i === 2 ? { maxBatchKeys: 1 } : {}) }))
  const [owner, asker, unbatched] = procs
  const askers = [asker, unbatched]
  const peercacheArgs = (group) => ({ group: group.name })
  const contestants = [{ name: 'peercache', proc: asker, args: peercacheArgs }, { name: 'peercache-unbatched', proc: unbatched, args: peercacheArgs }]
  let server
  try {
    if (!redis.missing) {
      server = await startRedis()
      for (const [name, autoPipelining] of [['ioredis', false], ['ioredis-autopipeline', true]]) {
        const proc = await startRole('redis-client', { name: `remoteHit-${name}` })
        procs.push(proc)
        await proc.call('connect', [{ port: server.port, autoPipelining }])
        contestants.push({ name, proc, args: (group) => ({ valueBytes: group.valueBytes }) })
      }
    }
    const redisClient = contestants.find((c) => c.name === ANCHOR)?.proc
    const keysBySize = await fillOwners({ owner, ownerUrl: urls[0], ring: new Ring(urls), groups, redisClient })
    const rows = []
    for (const group of groups) {
      for (const concurrency of CONCURRENCY) {
        log(`remoteHit: ${group.valueBytes} B, ${concurrency} concurrent, ${budget.rounds} rounds`)
        const keys = keysBySize.get(group.valueBytes)
        const runs = new Map(contestants.map((c) => [c.name, []]))
        // Rounds interleave the contestants: a burst of load from elsewhere hits one round of each, and the median drops it.
        for (let round = 0; round < budget.rounds; round++) {
          for (const c of contestants) {
            const loop = { ...c.args(group), keys, concurrency, maxOps: budget.maxOps, maxMs: budget.roundMs, warmupMs: round === 0 ? budget.warmupMs : 0 }
            runs.get(c.name).push(await c.proc.call('load', [loop], budget.roundMs * 3 + 60_000))
          }
        }
        for (const c of contestants) rows.push(medianOfRounds(c.name, concurrency, group.valueBytes, runs.get(c.name)))
      }
    }
    await checkEveryGetCrossedTheWire({ owner, askers, groups })
    return { text: table(rows, redis), json: rows }
  } finally {
    await stopAll(procs)
    await server?.stop()
  }
}

/** One row from several rounds: the median of each figure, and the operations of all rounds. */
function medianOfRounds(contestant, concurrency, valueBytes, runs) {
  const mid = (field) => median(runs.map((r) => r[field]))
  return { contestant, concurrency, valueBytes, opsPerSec: mid('opsPerSec'), p50Us: mid('p50Us'), p99Us: mid('p99Us'), maxUs: Math.max(...runs.map((r) => r.maxUs)), ops: runs.reduce((sum, r) => sum + r.ops, 0), rounds: runs.length }
}

/** Keys the owner really owns (the same ring as the peers'), loaded into its cache and into Redis. */
async function fillOwners({ owner, ownerUrl, ring, groups, redisClient }) {
  const keysBySize = new Map()
  for (const group of groups) {
    const keys = []
    for (let i = 0; keys.length < KEY_COUNT[group.valueBytes]; i++) {
      const key = `r${group.valueBytes}:${i}`
      if (ring.owner(key) === ownerUrl) keys.push(key)
    }
    const stats = await owner.call('fill', [{ group: group.name, keys }])
    if (stats.main.items !== keys.length || stats.loads !== keys.length) throw new Error(`the owner holds ${stats.main.items} of ${keys.length} keys after filling (${stats.loads} loads)`)
    await redisClient?.call('fill', [{ keys, valueBytes: group.valueBytes }])
    keysBySize.set(group.valueBytes, keys)
  }
  return keysBySize
}

/** The numbers mean nothing unless the askers fetched every value from the owner. */
async function checkEveryGetCrossedTheWire({ owner, askers, groups }) {
  for (const group of groups) {
    let fetched = 0
    for (const asker of askers) {
      const a = await asker.call('stats', [group.name])
      if (a.loads !== 0 || a.peerErrors !== 0 || a.mainHits !== 0 || a.hotHits !== 0 || a.peerLoads !== a.gets) {
        throw new Error(`remoteHit ${group.name}: ${asker.name} did not fetch every value from the owner: ${JSON.stringify(a)}`)
      }
      fetched += a.peerLoads
    }
    const o = await owner.call('stats', [group.name])
    if (o.loads !== o.main.items || o.serverRequests !== fetched) throw new Error(`remoteHit ${group.name}: the owner loaded or missed values during the run: ${JSON.stringify(o)}`)
  }
}

function table(rows, redis) {
  const anchorOf = (r) => rows.find((a) => a.contestant === ANCHOR && a.valueBytes === r.valueBytes && a.concurrency === r.concurrency)
  const body = rows.map((r) => {
    const a = anchorOf(r)
    return [r.contestant, r.valueBytes === 100 ? '100 B' : `${r.valueBytes / 1024} KiB`, r.concurrency, r.opsPerSec, r.p50Us, r.p99Us, ratio(r.opsPerSec, a?.opsPerSec), ratio(r.p99Us, a?.p99Us)]
  })
  const anchor = redis.missing ? redis.missing : `anchor: ioredis (default settings) at the same value size and concurrency; ${redis.version}`
  const note = `\n${anchor}\nfigures: the median of ${rows[0]?.rounds} rounds per contestant, taken in turns\npeercache-unbatched: the same asker with maxBatchKeys: 1 (one request per get)\n`
  return formatTable('Remote hit: get of a value another process holds (hot cache off)', ['contestant', 'value', 'concurrent', 'ops/s', 'p50 µs', 'p99 µs', 'ops/s vs ioredis', 'p99 vs ioredis'], body) + note
}
