// Role of the ring scenario's process: lookups, rebuilds, key movement and spread of dist/ring.js.
import { PEER_DEFAULTS } from '../../../dist/defaults.js'
import { Ring } from '../../../dist/ring.js'

const DEFAULT_VNODES = PEER_DEFAULTS.vnodes
import { mean, median, stddev } from '../stats.mjs'

/** Distinct, realistic peer URLs (another `set` gives other names, hence another ring) and keys. */
const peerUrl = (i, set = 0) => `http://10.${set & 255}.${(i >> 8) & 255}.${i & 255}:7001`
const peerUrls = (n, set = 0) => Array.from({ length: n }, (_, i) => peerUrl(i, set))
const sampleKeys = (n) => Array.from({ length: n }, (_, i) => `user:${i}:profile`)

/** ns per owners(key, 1) lookup and ms per rebuild, at the default vnodes, for each peer count. */
export function lookups({ peerCounts, keyCount, rounds }) {
  const keys = sampleKeys(keyCount)
  for (const peers of peerCounts) timeLookups(new Ring(peerUrls(peers)), keys) // warm-up: JIT, string hashes
  return peerCounts.map((peers) => {
    const urls = peerUrls(peers)
    const ring = new Ring(urls)
    const lookupNs = median(Array.from({ length: rounds }, () => timeLookups(ring, keys)))
    return { kind: 'lookup', peers, vnodes: DEFAULT_VNODES, lookupNs, rebuildMs: rebuildMs(urls, DEFAULT_VNODES, rounds) }
  })
}

/** What more vnodes cost on a large ring: rebuild ms and lookup ns at `peers` peers, for each vnodes. */
export function costs({ vnodesList, peers, keyCount, rounds }) {
  const keys = sampleKeys(keyCount)
  const urls = peerUrls(peers)
  return vnodesList.map((vnodes) => {
    const ring = new Ring(urls, vnodes)
    timeLookups(ring, keys) // warm-up
    return {
      kind: 'cost',
      peers,
      vnodes,
      points: peers * vnodes,
      lookupNs: median(Array.from({ length: rounds }, () => timeLookups(ring, keys))),
      rebuildMs: rebuildMs(urls, vnodes, rounds),
    }
  })
}

/** Share of keys that change owner when one peer joins or leaves, against the ideal (its fair share). */
export function movement({ peerCounts, keyCount }) {
  const keys = sampleKeys(keyCount)
  const rows = []
  for (const peers of peerCounts) {
    const urls = peerUrls(peers)
    const ring = new Ring(urls)
    const joiner = peerUrl(peers)
    const joined = new Ring([...urls, joiner])
    const leaver = ring.peers[0]
    const left = new Ring(urls.filter((u) => u !== leaver))
    let joinMoved = 0
    let joinStray = 0
    let leaveMoved = 0
    let leaveStray = 0
    for (const key of keys) {
      const before = ring.owners(key, 1)[0]
      const afterJoin = joined.owners(key, 1)[0]
      if (afterJoin !== before) {
        joinMoved++
        if (afterJoin !== joiner) joinStray++
      }
      if (left.owners(key, 1)[0] !== before) {
        leaveMoved++
        if (before !== leaver) leaveStray++
      }
    }
    rows.push({
      kind: 'movement',
      event: 'join',
      peers,
      movedShare: joinMoved / keyCount,
      idealShare: 1 / (peers + 1),
      strayMoves: joinStray,
    })
    rows.push({ kind: 'movement', event: 'leave', peers, movedShare: leaveMoved / keyCount, idealShare: 1 / peers, strayMoves: leaveStray })
  }
  return rows
}

/**
 * Keys per peer for each vnodes and peer count, over `trials` rings of different peer names (one
 * ring's spread is luck): mean and worst max/mean, mean min/mean and stddev/mean; rebuild time.
 */
export function spread({ vnodesList, peerCounts, keyCount, trials, rounds }) {
  const keys = sampleKeys(keyCount)
  const rows = []
  for (const vnodes of vnodesList) {
    for (const peers of peerCounts) {
      const shapes = Array.from({ length: trials }, (_, set) => keysPerPeer(new Ring(peerUrls(peers, set), vnodes), keys))
      const maxes = shapes.map((s) => s.maxToMean)
      rows.push({
        kind: 'spread',
        vnodes,
        peers,
        trials,
        keys: keyCount,
        maxToMean: mean(maxes),
        worstMaxToMean: Math.max(...maxes),
        minToMean: mean(shapes.map((s) => s.minToMean)),
        stddevToMean: mean(shapes.map((s) => s.stddevToMean)),
        // What a perfectly even ring would still show with this many sampled keys.
        samplingNoise: Math.sqrt((peers - 1) / keyCount),
        rebuildMs: rebuildMs(peerUrls(peers), vnodes, rounds),
      })
    }
  }
  return rows
}

function keysPerPeer(ring, keys) {
  const index = new Map(ring.peers.map((p, i) => [p, i]))
  const counts = new Array(ring.peers.length).fill(0)
  for (const key of keys) counts[index.get(ring.owners(key, 1)[0])]++
  const m = mean(counts)
  return { maxToMean: Math.max(...counts) / m, minToMean: Math.min(...counts) / m, stddevToMean: stddev(counts) / m }
}

function timeLookups(ring, keys) {
  let misses = 0
  const started = process.hrtime.bigint()
  for (let i = 0; i < keys.length; i++) if (ring.owners(keys[i], 1)[0] === undefined) misses++
  const ns = Number(process.hrtime.bigint() - started) / keys.length
  if (misses > 0) throw new Error('a lookup found no owner')
  return ns
}

function rebuildMs(urls, vnodes, rounds) {
  return median(
    Array.from({ length: rounds }, () => {
      const started = process.hrtime.bigint()
      if (new Ring(urls, vnodes).peers.length !== urls.length) throw new Error('ring lost peers')
      return Number(process.hrtime.bigint() - started) / 1e6
    }),
  )
}
