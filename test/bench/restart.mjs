// Warm restarts, measured (issue 14's figures): `npm run build && node test/bench/restart.mjs [--quick]`.
// A 3-node demo cluster (demo/node.mjs, real processes on 127.0.0.1, replicas 2) has every user
// loaded once, then serves a steady Zipf load through the demo's load balancer. Then one node, or
// all of them, is restarted with SIGTERM: cold (no backup, no hand-off), from its backup (saved on
// close, restored at start) or with hand-off on close. For the 10 s after the last process is back
// this counts origin loads and the hit ratio (requests answered without an origin load), and the
// same for the restart itself. Prints a Markdown table, then one JSON line.
import { bounded } from './standalone.mjs' // first: tap skips this file, and the run is bounded
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Balancer } from '../../demo/balancer.mjs'
import { percentile, startLoad } from '../../demo/load.mjs'
import { AppNode, freePorts, stopNodes } from '../../demo/nodes.mjs'
import { seededRandom, zipfSampler } from '../../demo/zipf.mjs'
import { formatTable } from './table.mjs'
import { describeMachine, machineLine } from './machine.mjs'

const QUICK = process.argv.includes('--quick')
/** `--only TEXT`: the scenarios whose name contains TEXT. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
/**
 * The run: nodes, users and their Zipf exponent, requests per second and at once, the steady load
 * before a restart and the window measured after it (ms), users filled at once (a burst of thousands
 * of loads would have owners refuse peers, and askers load for themselves), and the longest a
 * scenario's load may run (ms; it stops earlier, when the scenario is done).
 */
const { NODES, USERS, ZIPF, RATE, CONCURRENCY, STEADY_MS, WINDOW_MS, FILL_SLICE, LOAD_CAP_MS } = {
  NODES: 3,
  USERS: 2000,
  ZIPF: 0.9,
  RATE: 400,
  CONCURRENCY: 32,
  STEADY_MS: 3000,
  WINDOW_MS: QUICK ? 5000 : 10_000,
  FILL_SLICE: 32,
  LOAD_CAP_MS: 90_000,
}

const SCENARIOS = [
  { name: 'no restart (baseline)', who: 'none', how: 'cold' },
  { name: 'one node, cold', who: 'one', how: 'cold' },
  { name: 'one node, from its backup', who: 'one', how: 'backup' },
  { name: 'one node, hand-off on close', who: 'one', how: 'hand-off' },
  { name: 'all at once, cold', who: 'all', how: 'cold' },
  { name: 'all at once, from their backups', who: 'all', how: 'backup' },
  { name: 'rolling (one by one), cold', who: 'rolling', how: 'cold' },
  { name: 'rolling (one by one), hand-off on close', who: 'rolling', how: 'hand-off' },
  { name: 'rolling (one by one), from their backups', who: 'rolling', how: 'backup' },
]

// However a run goes wrong, the script ends.
const log = bounded('restart', 900_000)

/** Cluster-wide counters as last read: origin loads, requests, local hits. */
async function totals(nodes) {
  await Promise.all(nodes.map((n) => n.poll()))
  const sum = (field) => nodes.reduce((s, n) => s + n.counters()[field], 0)
  return { originLoads: sum('originLoads'), requests: sum('requests'), localHits: sum('mainHits') + sum('hotHits') }
}

function between(a, b) {
  const requests = b.requests - a.requests
  const originLoads = b.originLoads - a.originLoads
  return {
    requests,
    originLoads,
    hitRatio: requests === 0 ? null : 1 - originLoads / requests,
    localHitRatio: requests === 0 ? null : (b.localHits - a.localHits) / requests,
  }
}

async function runScenario(scenario) {
  const dirs = []
  const ports = await freePorts(NODES)
  const peers = ports.map((p) => `http://127.0.0.1:${p}`)
  const nodes = ports.map((port, i) => {
    const args = scenario.how === 'hand-off' ? [] : ['--hand-off-ms', '0']
    if (scenario.how === 'backup') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peercache-restart-'))
      dirs.push(dir)
      args.push('--backup-dir', dir)
    }
    return new AppNode({ id: `n${i + 1}`, port, peers, args })
  })
  const balancer = new Balancer(nodes.map((n) => ({ id: n.id, url: n.url })))
  const stop = new AbortController()
  try {
    await Promise.all(nodes.map((n) => n.start()))
    // Every user loaded once, so the steady load starts from a warm cluster.
    for (let start = 1; start <= USERS; start += FILL_SLICE) {
      const ids = Array.from({ length: Math.min(FILL_SLICE, USERS - start + 1) }, (_, i) => start + i)
      await Promise.all(ids.map((id) => balancer.get(`/users/${id}`)))
    }
    const load = startLoad({
      balancer,
      nextId: zipfSampler(USERS, ZIPF, seededRandom(7)),
      rate: RATE,
      concurrency: CONCURRENCY,
      durationMs: LOAD_CAP_MS,
      nodeIds: nodes.map((n) => n.id),
      signal: stop.signal,
    })
    await sleep(STEADY_MS)
    const before = await totals(nodes)
    const restartStarted = performance.now()
    const restart = async (n) => {
      await n.stop()
      await n.start()
    }
    if (scenario.who === 'one') await restart(nodes[1])
    else if (scenario.who === 'all') {
      await Promise.all(nodes.map((n) => n.stop()))
      await Promise.all(nodes.map((n) => n.start()))
    } else if (scenario.who === 'rolling') for (const n of nodes) await restart(n)
    const restartMs = performance.now() - restartStarted
    const back = await totals(nodes)
    const seen = nodes.map((n) => load.record.nodes.get(n.id).latencies.length)
    await sleep(WINDOW_MS)
    const after = await totals(nodes)
    for (const n of nodes) log(`  ${n.id}: ${JSON.stringify(n.counters())}`)
    stop.abort()
    const record = await load.done
    const latencies = nodes.flatMap((n, i) => record.nodes.get(n.id).latencies.slice(seen[i]))
    const window = { ...between(back, after), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
    return { scenario: scenario.name, restartMs, during: between(before, back), window, failed: record.failed }
  } finally {
    stop.abort()
    await balancer.close()
    await stopNodes(nodes)
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  }
}

const machine = describeMachine()
log(machineLine(machine))
const results = []
for (const scenario of SCENARIOS.filter((s) => ONLY === undefined || s.name.includes(ONLY))) {
  log(scenario.name)
  const r = await runScenario(scenario)
  log(`  ${JSON.stringify(r)}`)
  results.push(r)
}
const pct = (x) => (x === null ? null : `${(100 * x).toFixed(1)} %`)
console.log(
  formatTable(
    `Restarts: ${NODES} nodes, ${USERS} users (Zipf s=${ZIPF}), ${RATE} requests/s; the ${WINDOW_MS / 1000} s after the last process is back`,
    [
      'scenario',
      'restart s',
      'origin loads during',
      'origin loads after',
      'hit ratio after',
      'local hits after',
      'p50 ms after',
      'p99 ms after',
      'failed requests',
    ],
    results.map((r) => [
      r.scenario,
      (r.restartMs / 1000).toFixed(1),
      r.during.originLoads,
      r.window.originLoads,
      pct(r.window.hitRatio),
      pct(r.window.localHitRatio),
      r.window.p50Ms,
      r.window.p99Ms,
      r.failed,
    ]),
  ),
)
console.log(JSON.stringify({ machine, windowMs: WINDOW_MS, results }))
