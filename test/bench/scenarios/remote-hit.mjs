// Remote hit: process B gets values that process A owns and already holds, with B's hot cache off
// and one replica per key (A's alone), so every get crosses the wire. Against the same GETs from
// Redis through ioredis (default settings, and enableAutoPipelining). A third process, with
// batching off (maxBatchKeys: 1), shows what batching is worth, and `http-baseline` (one plain
// undici GET per get to a node:http server holding a Map) the floor of one request per get.
// Contestants take turns at each setting, so that noise from the shared machine falls on all alike.
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
/** Peer options of each process: the owner, the asker (peer stream), one request per get, batches only. */
const ASKER_OPTIONS = [{}, { peerStreams: true }, { peerStreams: false, maxBatchKeys: 1 }, { peerStreams: false }]

export async function run({ quick, install, log, ...options }) {
  const budget = quick
    ? { rounds: 3, roundMs: 800, maxOps: 200_000, warmupMs: 400 }
    : { rounds: 5, roundMs: 2_000, maxOps: 1_000_000, warmupMs: 1_000 }
  const redis = ensureRedis({ install })
  if (redis.missing) log(redis.missing)
  const groups = VALUE_SIZES.map((size) => ({ name: `v${size}`, valueBytes: size, maxBytes: 256 * MiB, options: { replicas: 1 } }))
  const askerGroups = groups.map((g) => ({ ...g, options: { ...g.options, hotCacheRatio: 0 } }))
  const { procs, urls } = await startCluster(
    ['remoteHit-owner', 'remoteHit-asker', 'remoteHit-asker-unbatched', 'remoteHit-asker-batch'],
    (i) => (i === 0 ? groups : askerGroups),
    (i) => ({ ...commandLinePeerOptions(options), ...ASKER_OPTIONS[i] }),
  )
  const [owner, asker, unbatched, batched] = procs
  const peercacheArgs = (group) => ({ group: group.name })
  const contestants = [
    { name: 'peercache', proc: asker, args: peercacheArgs },
    { name: 'peercache-unbatched', proc: unbatched, args: peercacheArgs },
    { name: 'peercache-batch', proc: batched, args: peercacheArgs },
  ]
  let server
  try {
    const ring = new Ring(urls)
    const keysBySize = new Map(groups.map((g) => [g.valueBytes, ownedKeys(ring, urls[0], g.valueBytes)]))
    await fillOwner(owner, groups, keysBySize)
    contestants.push(await httpBaseline(procs, keysBySize))
    if (!redis.missing) {
      server = await startRedis()
      contestants.push(...(await redisClients(procs, server.port, keysBySize)))
    }
    const rows = []
    for (const group of groups) {
      for (const concurrency of CONCURRENCY) {
        log(`remoteHit: ${group.valueBytes} B, ${concurrency} concurrent, ${budget.rounds} rounds`)
        const keys = keysBySize.get(group.valueBytes)
        const runs = new Map(contestants.map((c) => [c.name, []]))
        // Rounds interleave the contestants: a burst of load from elsewhere hits one round of each, and the median drops it.
        for (let round = 0; round < budget.rounds; round++) {
          for (const c of contestants) {
            const loop = {
              ...c.args(group),
              keys,
              concurrency,
              maxOps: budget.maxOps,
              maxMs: budget.roundMs,
              warmupMs: round === 0 ? budget.warmupMs : 0,
            }
            runs.get(c.name).push(await c.proc.call('load', [loop], budget.roundMs * 3 + 60_000))
          }
        }
        for (const c of contestants) rows.push(medianOfRounds(c.name, concurrency, group.valueBytes, runs.get(c.name)))
      }
    }
    await checkEveryGetCrossedTheWire({ owner, askers: [asker, unbatched, batched], groups })
    return { text: table(rows, redis), json: rows }
  } finally {
    await stopAll(procs)
    await server?.stop()
  }
}

/** Keys the owner really owns: the same ring as the peers' (one replica per key, so only the owner holds them). */
function ownedKeys(ring, ownerUrl, valueBytes) {
  const keys = []
  for (let i = 0; keys.length < KEY_COUNT[valueBytes]; i++) {
    const key = `r${valueBytes}:${i}`
    if (ring.owners(key, 1)[0] === ownerUrl) keys.push(key)
  }
  return keys
}

async function fillOwner(owner, groups, keysBySize) {
  for (const group of groups) {
    const keys = keysBySize.get(group.valueBytes)
    const stats = await owner.call('fill', [{ group: group.name, keys }])
    if (stats.main.items !== keys.length || stats.loads !== keys.length)
      throw new Error(`the owner holds ${stats.main.items} of ${keys.length} keys after filling (${stats.loads} loads)`)
  }
}

/** The transport floor: a server process holding the same keys, and a client process. */
async function httpBaseline(procs, keysBySize) {
  const serverProc = await startRole('http-baseline', { name: 'remoteHit-http-server' })
  procs.push(serverProc)
  const clientProc = await startRole('http-baseline', { name: 'remoteHit-http-client' })
  procs.push(clientProc)
  const url = await serverProc.call('serve', [{ keysBySize: [...keysBySize] }])
  await clientProc.call('connect', [{ url }])
  return { name: 'http-baseline', proc: clientProc, args: (group) => ({ valueBytes: group.valueBytes }) }
}

/** ioredis with default settings (the anchor) and with auto-pipelining; the Redis holds the same keys. */
async function redisClients(procs, port, keysBySize) {
  const contestants = []
  for (const [name, autoPipelining] of [
    ['ioredis', false],
    ['ioredis-autopipeline', true],
  ]) {
    const proc = await startRole('redis-client', { name: `remoteHit-${name}` })
    procs.push(proc)
    await proc.call('connect', [{ port, autoPipelining }])
    contestants.push({ name, proc, args: (group) => ({ valueBytes: group.valueBytes }) })
  }
  for (const [valueBytes, keys] of keysBySize) await contestants[0].proc.call('fill', [{ keys, valueBytes }])
  return contestants
}

/** One row from several rounds: the median of each figure, and the operations of all rounds. */
function medianOfRounds(contestant, concurrency, valueBytes, runs) {
  const mid = (field) => median(runs.map((r) => r[field]))
  return {
    contestant,
    concurrency,
    valueBytes,
    opsPerSec: mid('opsPerSec'),
    p50Us: mid('p50Us'),
    p99Us: mid('p99Us'),
    maxUs: Math.max(...runs.map((r) => r.maxUs)),
    ops: runs.reduce((sum, r) => sum + r.ops, 0),
    rounds: runs.length,
  }
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
    if (o.loads !== o.main.items || o.serverRequests !== fetched)
      throw new Error(`remoteHit ${group.name}: the owner loaded or missed values during the run: ${JSON.stringify(o)}`)
  }
}

function table(rows, redis) {
  const anchorOf = (r) => rows.find((a) => a.contestant === ANCHOR && a.valueBytes === r.valueBytes && a.concurrency === r.concurrency)
  const body = rows.map((r) => {
    const a = anchorOf(r)
    return [
      r.contestant,
      r.valueBytes === 100 ? '100 B' : `${r.valueBytes / 1024} KiB`,
      r.concurrency,
      r.opsPerSec,
      r.p50Us,
      r.p99Us,
      ratio(r.opsPerSec, a?.opsPerSec),
      ratio(r.p99Us, a?.p99Us),
    ]
  })
  const anchor = redis.missing
    ? redis.missing
    : `anchor: ioredis (default settings) at the same value size and concurrency; ${redis.version}`
  const note = `\n${anchor}\nfigures: the median of ${rows[0]?.rounds} rounds per contestant, taken in turns\npeercache: gets on the peer stream (peerStreams: true)\npeercache-unbatched: an asker with peerStreams: false and maxBatchKeys: 1 (one request per get)\npeercache-batch: an asker with peerStreams: false (batched requests)\nhttp-baseline: one plain undici GET per get to a node:http server answering from a Map (no peercache)\n`
  return (
    formatTable(
      'Remote hit: get of a value another process holds (hot cache off)',
      ['contestant', 'value', 'concurrent', 'ops/s', 'p50 µs', 'p99 µs', 'ops/s vs ioredis', 'p99 vs ioredis'],
      body,
    ) + note
  )
}
