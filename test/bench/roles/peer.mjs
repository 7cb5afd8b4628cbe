// Role of a peercache process: one Peer serving the protocol on its own http server
// (`http.createServer(peer.handler)`, so the port is known before the ring is), with groups whose
// loader makes values of a given size and counts its calls. The runner drives gets through it.
import http from 'node:http'
import { Peer } from '../../../dist/index.js'
// The demo's seeded Zipf sampler (ids 1..n), so that the demo and the bench draw keys alike.
import { seededRandom, zipfSampler } from '../../../demo/zipf.mjs'
import { closedLoop } from '../load-loop.mjs'

let server
let peer
const groups = new Map()

/** Listens on a free port of 127.0.0.1; resolves with this process's URL. */
export async function listen() {
  server = http.createServer()
  server.keepAliveTimeout = 10_000 // as peer.listen() does
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return `http://127.0.0.1:${server.address().port}`
}

/**
 * Joins the cluster: `groups` are [{ name, valueBytes, maxBytes, loadDelayMs?, options? }], where
 * `loadDelayMs` makes the origin slow (a timer), as a real one is, and `options` are more group
 * options (hotCacheRatio, replicas); `peerOptions` are more Peer options (connections, maxBatchKeys).
 */
export function init({ self, peers, groups: specs, peerOptions }) {
  peer = new Peer({ ...peerOptions, self, peers })
  server.on('request', peer.handler)
  peer.attach(server)
  for (const spec of specs) {
    const load =
      spec.loadDelayMs > 0
        ? (key) => new Promise((resolve) => setTimeout(() => resolve(valueFor(key, spec.valueBytes)), spec.loadDelayMs))
        : (key) => valueFor(key, spec.valueBytes)
    groups.set(spec.name, { group: peer.group(spec.name, { ...spec.options, maxBytes: spec.maxBytes, load }), valueBytes: spec.valueBytes })
  }
}

/** Gets every key once, `concurrency` at a time (pre-fills the owner's cache). */
export async function fill({ group, keys, concurrency = 64 }) {
  const g = groups.get(group).group
  let next = 0
  const caller = async () => {
    while (next < keys.length) await g.get(keys[next++])
  }
  await Promise.all(Array.from({ length: concurrency }, caller))
  return g.stats()
}

/** A closed-loop run of gets (see load-loop.mjs); checks each value's size. */
export function load({ group, ...loop }) {
  return closedLoop({ ...loop, op: checkedGet(group) })
}

/** All `keys` at once; resolves with the wall time in ms and how many gets answered. */
export async function burst({ group, keys }) {
  const get = checkedGet(group)
  const started = performance.now()
  await Promise.all(keys.map(get))
  return { ms: performance.now() - started, gets: keys.length }
}

/** A closed loop over a Zipf(s) draw of `gets` keys out of `keyCount`, seeded for repeatability. */
export function zipf({ group, keyCount, s, gets, seed, concurrency, maxMs }) {
  const draw = zipfSampler(keyCount, s, seededRandom(seed))
  const keys = Array.from({ length: gets }, () => `z${draw()}`)
  return closedLoop({ op: checkedGet(group), keys, concurrency, maxOps: gets, maxMs })
}

export function stats(group) {
  return groups.get(group).group.stats()
}

export async function close() {
  await peer?.close()
  if (server) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}

function checkedGet(group) {
  const { group: g, valueBytes } = groups.get(group)
  return async (key) => {
    const value = await g.get(key)
    if (value.length !== valueBytes) throw new Error(`${group}/${key}: got ${value.length} bytes, expected ${valueBytes}`)
  }
}

/** A value that owns its memory, as a loader reading from a database would return. */
function valueFor(key, bytes) {
  return Buffer.alloc(bytes, key.charCodeAt(key.length - 1))
}
