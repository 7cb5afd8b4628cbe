// The cost of a local hit: group.get(key) answered by the main cache, against a bare lru-cache get
// of the same keys, in ns per operation. A quick figure for the README, not a test assertion.
// Run: npm run build && node test/bench/local-hit-quick.mjs [--ops 2000000] [--keys 1000]
import { LRUCache } from 'lru-cache'
import { Peer } from '../../dist/index.js'

// tap runs every script under test/: this one is a measurement, not a test.
if (process.env.TAP === '1') {
  console.log('1..0 # SKIP a benchmark: run it with node')
  process.exit(0)
}

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const OPS = arg('ops', 2_000_000)
const KEYS = arg('keys', 1000)
const ROUNDS = 5

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const value = (key) => Buffer.from(`value of ${key}`.padEnd(100, '.'))

const peer = new Peer({ self: 'http://127.0.0.1:1' })
const group = peer.group('bench', { maxBytes: 64 << 20, load: (key) => value(key) })
for (const key of keys) await group.get(key)

const lru = new LRUCache({ maxSize: 64 << 20, sizeCalculation: (v) => v.length })
for (const key of keys) lru.set(key, value(key))

/** ns per op of `run(n)`, the best of ROUNDS (the least disturbed by the rest of the machine). */
async function nsPerOp(run) {
  let best = Number.POSITIVE_INFINITY
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint()
    await run(OPS)
    best = Math.min(best, Number(process.hrtime.bigint() - start) / OPS)
  }
  return best
}

let sink = 0
const cases = {
  'lru-cache get (sync)': (n) => {
    for (let i = 0; i < n; i++) sink += lru.get(keys[i % KEYS]).length
  },
  'Promise.resolve(lru-cache get), no await': async (n) => {
    let p
    for (let i = 0; i < n; i++) p = Promise.resolve(lru.get(keys[i % KEYS]))
    sink += (await p).length
  },
  'group.get (main-cache hit), no await': async (n) => {
    let p
    for (let i = 0; i < n; i++) p = group.get(keys[i % KEYS])
    sink += (await p).length
  },
  'await Promise.resolve(lru-cache get)': async (n) => {
    for (let i = 0; i < n; i++) sink += (await Promise.resolve(lru.get(keys[i % KEYS]))).length
  },
  'await group.get (main-cache hit)': async (n) => {
    for (let i = 0; i < n; i++) sink += (await group.get(keys[i % KEYS])).length
  },
}

const results = {}
for (const run of Object.values(cases)) await run(OPS / 10) // warm up every path first
for (const [name, run] of Object.entries(cases)) results[name] = await nsPerOp(run)

const s = group.stats()
if (s.loads !== KEYS || s.mainHits < OPS) throw new Error(`not all hits: ${JSON.stringify({ loads: s.loads, mainHits: s.mainHits })}`)
console.log(`local hit, ${OPS} ops over ${KEYS} keys, best of ${ROUNDS} (node ${process.version}):`)
for (const [name, ns] of Object.entries(results)) console.log(`  ${name.padEnd(40)} ${ns.toFixed(1).padStart(7)} ns/op`)
const overhead = results['group.get (main-cache hit), no await'] - results['Promise.resolve(lru-cache get), no await']
console.log(`  group.get's own cost over lru-cache get:  ${overhead.toFixed(1).padStart(7)} ns/op (both returning a promise)`)
await peer.close()
if (sink === 0) console.log('') // keeps the loops from being optimised away
