// The end of a run: one result object (printed as the --json line) and the human summary table.
import { percentile } from './load.mjs'
import { LOG_DIR, originLoadsOf } from './nodes.mjs'
import { dedupFactor, percent, table } from './table.mjs'

/** Everything the run measured, as plain data. */
export function buildResult({ nodes, record, chaos, workload, durationMs }) {
  const total = originLoadsOf(nodes)
  // Without a kill every load came "before" it; without a restart every load after the kill came "during".
  const atKill = chaos?.loadsAtKill ?? total
  const atBack = chaos?.loadsAtBack ?? total
  return {
    ok: record.failed === 0 && !chaos?.error,
    durationS: Math.round(durationMs / 100) / 10,
    workload,
    requests: record.requests,
    answered: record.answered,
    failed: record.failed,
    retried: record.retries,
    failures: record.failures,
    writes: record.writes,
    writeFailures: record.writeFailures,
    originLoads: { before: atKill, during: atBack - atKill, after: total - atBack, total },
    dedupFactor: dedupFactor(record.answered, total),
    nodes: nodes.map((n) => {
      const c = n.counters()
      const served = record.nodes.get(n.id)
      return {
        id: n.id,
        url: n.url,
        starts: n.starts,
        requests: served.requests,
        gets: c.gets,
        mainHits: c.mainHits,
        hotHits: c.hotHits,
        peerFetches: c.peerLoads,
        peerErrors: c.peerErrors,
        originLoads: c.originLoads,
        writes: c.writes,
        changeEvents: c.changeEvents,
        p50Ms: percentile(served.latencies, 50),
        p99Ms: percentile(served.latencies, 99),
      }
    }),
    chaos: {
      killed: chaos?.killed ?? null,
      restarted: chaos?.restarted ?? null,
      killedAtS: chaos?.killedAtMs == null ? null : chaos.killedAtMs / 1000,
      backAtS: chaos?.backAtMs == null ? null : chaos.backAtMs / 1000,
      error: chaos?.error ?? null,
    },
  }
}

/** The summary as lines of text. */
export function summaryLines(result) {
  const { originLoads: o, chaos, workload: w } = result
  const rows = result.nodes.map((n) => [
    n.id,
    n.starts > 1 ? `restarted` : 'up',
    n.requests,
    percent(n.mainHits, n.gets),
    percent(n.hotHits, n.gets),
    n.peerFetches,
    n.originLoads,
    n.p50Ms,
    n.p99Ms,
  ])
  const lines = [
    `peercache demo summary: ${result.nodes.length} nodes, ${result.durationS} s, ${w.users} users (Zipf s=${w.zipf}), ${w.rate} req/s at most ${w.concurrency} at once, origin ${w.originMs} ms`,
    ...table(['node', 'state', 'requests', 'main-hit', 'hot-hit', 'peer fetches', 'origin loads', 'p50 ms', 'p99 ms'], rows),
    `requests: ${result.requests} (answered ${result.answered}, failed ${result.failed}, retried on another node ${result.retried})`,
    `origin loads: ${o.total} (before the kill ${o.before}, while down ${o.during}, after the restart ${o.after})`,
    `dedup factor: ${result.dedupFactor ?? '-'} requests per origin load`,
    `writes: ${result.writes} (PUT or DELETE of a user, ${result.writeFailures} failed); change events heard: ${result.nodes.map((n) => `${n.id} ${n.changeEvents}`).join(', ')}`,
  ]
  if (chaos.killed)
    lines.push(
      `chaos: ${chaos.killed} SIGKILLed at ${chaos.killedAtS.toFixed(1)} s, ${chaos.restarted ? `back at ${chaos.backAtS.toFixed(1)} s` : 'not restarted'}`,
    )
  else lines.push('chaos: off')
  if (chaos.error) lines.push(`chaos step failed: ${chaos.error}`)
  for (const f of result.failures) lines.push(`failure: ${f}`)
  lines.push(
    result.ok
      ? 'result: OK, no request failed'
      : `result: FAILED (${result.failed} failed requests${chaos.error ? ', chaos step failed' : ''}); node logs in ${LOG_DIR}`,
  )
  return lines
}
