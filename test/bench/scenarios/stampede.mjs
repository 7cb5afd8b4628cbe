// Stampede: 10,000 gets at once of 100 cold keys, spread over 3 processes (every process asks for
// every key, about 33 times). The origin is slow (a timer), so all the gets overlap. Singleflight
// here and at the owner must turn them into exactly one origin load per key.
import { commandLinePeerOptions, startCluster, sumStats } from '../cluster.mjs'
import { stopAll } from '../procs.mjs'
import { median } from '../stats.mjs'
import { formatTable, ratio } from '../table.mjs'

const PROCESSES = 3
const KEYS = 100
const GETS = 10_000
const LOAD_DELAY_MS = 50

export async function run({ quick, log, ...options }) {
  const rounds = quick ? 3 : 10
  const group = { name: 'stampede', valueBytes: 100, maxBytes: 64 * 1024 * 1024, loadDelayMs: LOAD_DELAY_MS }
  const names = Array.from({ length: PROCESSES }, (_, i) => `stampede-${i}`)
  const { procs } = await startCluster(
    names,
    () => [group],
    () => commandLinePeerOptions(options),
  )
  try {
    const results = []
    let before = sumStats(await allStats(procs), ['loads', 'peerErrors', 'localLoads'])
    for (let round = 0; round < rounds; round++) {
      log(`stampede: round ${round + 1} of ${rounds}`)
      // Fresh keys each round: cold everywhere. Get j goes to process j % 3 and asks for key j % 100.
      const keysOf = (p) =>
        Array.from({ length: GETS }, (_, j) => j)
          .filter((j) => j % PROCESSES === p)
          .map((j) => `s${round}:${j % KEYS}`)
      const started = performance.now()
      await Promise.all(procs.map((proc, p) => proc.call('burst', [{ group: group.name, keys: keysOf(p) }])))
      const wallMs = performance.now() - started
      const after = sumStats(await allStats(procs), ['loads', 'peerErrors', 'localLoads'])
      results.push({ originLoads: after.loads - before.loads, peerErrors: after.peerErrors - before.peerErrors, wallMs })
      before = after
    }
    // The round farthest from one load per key is the one that counts.
    const worst = results.reduce((w, r) => (Math.abs(r.originLoads - KEYS) > Math.abs(w.originLoads - KEYS) ? r : w))
    const json = {
      keys: KEYS,
      gets: GETS,
      processes: PROCESSES,
      loadDelayMs: LOAD_DELAY_MS,
      originLoads: worst.originLoads,
      wallMs: median(results.map((r) => r.wallMs)),
      rounds: results,
    }
    return { text: table(json), json }
  } finally {
    await stopAll(procs)
  }
}

function allStats(procs) {
  return Promise.all(procs.map((p) => p.call('stats', ['stampede'])))
}

function table(json) {
  const rows = json.rounds.map((r, i) => [
    i + 1,
    json.keys,
    json.gets,
    r.originLoads,
    ratio(r.originLoads, json.keys),
    r.peerErrors,
    r.wallMs,
  ])
  return formatTable(
    `Stampede: ${json.gets.toLocaleString('en-US')} concurrent gets of ${json.keys} cold keys on ${json.processes} processes (origin takes ${json.loadDelayMs} ms)`,
    ['round', 'keys', 'gets', 'origin loads', 'loads per key', 'peer errors', 'wall ms'],
    rows,
  )
}
