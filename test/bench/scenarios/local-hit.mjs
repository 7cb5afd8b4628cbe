// Local hit: what a get of a key this process holds costs, against the lru-cache underneath.
import { startRole } from '../procs.mjs'
import { formatTable, ratio } from '../table.mjs'

export async function run({ quick, metrics, log }) {
  const rounds = quick ? 7 : 15
  const opsPerRound = quick ? 300_000 : 1_000_000
  log(`localHit: ${rounds} rounds of ${opsPerRound} gets each`)
  const proc = await startRole('local-hit', { name: 'localHit' })
  let r
  try {
    r = await proc.call('measure', [{ rounds, opsPerRound, metrics }], 300_000)
  } finally {
    await proc.stop()
  }
  const json = { peercacheNs: r.peercacheNs, lruNs: r.lruNs, ratio: r.peercacheNs / r.lruNs, rounds, opsPerRound }
  if (r.metricsNs !== undefined) Object.assign(json, { metricsNs: r.metricsNs, metricsRatio: r.metricsNs / r.peercacheNs })
  const rows = [
    ['await lru.get(key) (lru-cache)', 1e9 / r.lruNs, r.lruNs, Math.max(...r.roundsNs.lru), '1.00x'],
    [
      'await group.get(key) (peercache)',
      1e9 / r.peercacheNs,
      r.peercacheNs,
      Math.max(...r.roundsNs.peercache),
      ratio(r.peercacheNs, r.lruNs),
    ],
  ]
  if (r.metricsNs !== undefined)
    rows.push([
      'await group.get(key), metrics registered',
      1e9 / r.metricsNs,
      r.metricsNs,
      Math.max(...r.roundsNs.metrics),
      `${ratio(r.metricsNs, r.lruNs)} (${ratio(r.metricsNs, r.peercacheNs)} of no metrics)`,
    ])
  const text =
    formatTable(
      `Local hit: median of ${rounds} rounds of ${opsPerRound.toLocaleString('en-US')} gets of one cached key`,
      ['call', 'ops/s', 'ns/op (median round)', 'ns/op (slowest round)', 'vs lru-cache'],
      rows,
    ) + '\n(per-op percentiles are not measurable at this scale: a clock read costs as much as a hit)\n'
  return { text, json }
}
