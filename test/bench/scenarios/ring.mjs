// Ring: lookup and rebuild cost, key movement on join and leave, and how evenly keys spread over
// peers for several vnodes, the data behind the default vnodes.
import { startRole } from '../procs.mjs'
import { formatTable, ratio } from '../table.mjs'

const VNODES = [50, 100, 160, 200, 500]

export async function run({ quick, log }) {
  const keyCount = quick ? 200_000 : 1_000_000
  const rounds = quick ? 5 : 9
  const trials = quick ? 5 : 10
  const proc = await startRole('ring', { name: 'ring' })
  try {
    log('ring: lookups and rebuilds')
    const lookups = await proc.call('lookups', [{ peerCounts: [3, 100, 1000], keyCount, rounds }], 300_000)
    log('ring: key movement')
    const movement = await proc.call('movement', [{ peerCounts: [3, 10, 100], keyCount }], 300_000)
    log('ring: spread of keys per vnodes')
    const spread = await proc.call(
      'spread',
      [{ vnodesList: VNODES, peerCounts: [3, 10, 50], keyCount: quick ? keyCount : keyCount / 2, trials, rounds }],
      300_000,
    )
    log('ring: what more vnodes cost at 1,000 peers')
    const costs = await proc.call('costs', [{ vnodesList: VNODES, peers: 1000, keyCount, rounds }], 300_000)
    return { text: tables(lookups, movement, spread, costs, keyCount), json: [...lookups, ...movement, ...spread, ...costs] }
  } finally {
    await proc.stop()
  }
}

function tables(lookups, movement, spread, costs, keyCount) {
  const anchor = lookups[0]
  const lookupTable = formatTable(
    `Ring: lookup and rebuild at ${anchor.vnodes} vnodes`,
    ['peers', 'lookups/s', 'ns/lookup', 'vs 3 peers', 'rebuild ms'],
    lookups.map((r) => [r.peers, 1e9 / r.lookupNs, r.lookupNs, ratio(r.lookupNs, anchor.lookupNs), r.rebuildMs]),
  )
  const movementTable = formatTable(
    `Ring: keys that change owner when one peer joins or leaves (${keyCount.toLocaleString('en-US')} keys)`,
    ['event', 'peers before', 'moved', 'ideal (1/N)', 'moved vs ideal', 'moves not to/from that peer'],
    movement.map((r) => [r.event, r.peers, pct(r.movedShare), pct(r.idealShare), ratio(r.movedShare, r.idealShare), r.strayMoves]),
  )
  const s = spread[0]
  const spreadTable = formatTable(
    `Ring: keys per peer by vnodes (mean over ${s.trials} rings of different peer names, ${s.keys.toLocaleString('en-US')} keys sampled)`,
    ['vnodes', 'peers', 'max / mean', 'worst max / mean', 'min / mean', 'stddev / mean', 'sampling noise', 'rebuild ms'],
    spread.map((r) => [
      r.vnodes,
      r.peers,
      r.maxToMean.toFixed(3),
      r.worstMaxToMean.toFixed(3),
      r.minToMean.toFixed(3),
      pct(r.stddevToMean),
      pct(r.samplingNoise),
      r.rebuildMs,
    ]),
  )
  const costTable = formatTable(
    `Ring: what more vnodes cost at ${costs[0].peers.toLocaleString('en-US')} peers`,
    ['vnodes', 'points', 'ring memory', 'ns/lookup', 'rebuild ms'],
    costs.map((r) => [r.vnodes, r.points, `${((r.points * 8) / 1024).toFixed(0)} KiB`, r.lookupNs, r.rebuildMs]),
  )
  return [lookupTable, movementTable, spreadTable, costTable].join('\n')
}

function pct(share) {
  return `${(share * 100).toFixed(2)} %`
}
