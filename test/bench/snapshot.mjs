// Snapshot figures of issue 14: `npm run build && node test/bench/snapshot.mjs`.
// One group of ENTRIES values of 1 KiB (and of 10 KiB) in this process: the time to write its
// snapshot to memory and to restore it into an empty group of another peer, ROUNDS rounds each.
// Prints a Markdown table. Bounded: a fixed number of entries and rounds.
if (process.env.TAP_CHILD_ID !== undefined) {
  // tap's default globs include everything under test/: the benchmark is not a test.
  console.log('1..0 # SKIP the snapshot figures run with `node test/bench/snapshot.mjs`')
  process.exit(0)
}

const { PassThrough, Readable } = await import('node:stream')
const { Peer } = await import('../../dist/index.js')
const { formatTable } = await import('./table.mjs')

const ROUNDS = 3
const SIZES = [
  { entries: 100_000, valueBytes: 1024 },
  { entries: 10_000, valueBytes: 10 * 1024 },
]

let port = 1
const lonePeer = () => new Peer({ self: `http://127.0.0.1:${port++}` })

async function round({ entries, valueBytes }) {
  const peers = [lonePeer(), lonePeer()]
  try {
    const [from, to] = peers.map((p) => p.group('g', { maxBytes: 2 * entries * (valueBytes + 1024), load: () => Buffer.alloc(0) }))
    for (let i = 0; i < entries; i++) await from.set(`key-${i}`, Buffer.alloc(valueBytes, i & 255))
    const sink = new PassThrough()
    const chunks = []
    sink.on('data', (c) => chunks.push(c))
    let start = performance.now()
    const written = await from.snapshot(sink)
    const writeMs = performance.now() - start
    const bytes = Buffer.concat(chunks)
    start = performance.now()
    const restored = await to.restore(Readable.from([bytes]))
    const restoreMs = performance.now() - start
    if (restored.restored !== entries) throw new Error(`restored ${restored.restored} of ${entries}`)
    return { bytes: written.bytes, writeMs, restoreMs }
  } finally {
    await Promise.all(peers.map((p) => p.close()))
  }
}

const rows = []
for (const size of SIZES) {
  const runs = []
  for (let i = 0; i < ROUNDS; i++) runs.push(await round(size))
  const median = (f) => runs.map(f).sort((a, b) => a - b)[Math.floor(runs.length / 2)]
  const mb = runs[0].bytes / 1e6
  const writeMs = median((r) => r.writeMs)
  const restoreMs = median((r) => r.restoreMs)
  rows.push([
    `${size.entries} × ${size.valueBytes / 1024} KiB`,
    mb.toFixed(1),
    writeMs.toFixed(0),
    (mb / (writeMs / 1000)).toFixed(0),
    restoreMs.toFixed(0),
    (mb / (restoreMs / 1000)).toFixed(0),
  ])
}
const { loadavg } = await import('node:os')
console.log(
  formatTable('Snapshot write and restore (median of 3)', ['group', 'MB', 'write ms', 'write MB/s', 'restore ms', 'restore MB/s'], rows),
)
console.log(`load average during the run: ${loadavg()[0].toFixed(1)}`)
