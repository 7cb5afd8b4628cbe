// Compare-and-set under contention between 3 OS processes: 1,000 concurrent update(k, n => n + 1)
// calls (a third from each) end with exactly 1,000: every call wrote a different number, none was
// lost. Then ifAbsent and a ConflictError's current version across processes.
import t from 'tap'
import { startCluster, type Member } from './helpers/cluster.js'

const UPDATES = 1000

interface Increments {
  written: number[]
  failed: number
  errors: { name: string; message: string }[]
}

const cluster = await startCluster(t, {
  size: 3,
  groups: { n: { options: { maxBytes: 1 << 20, codec: 'json', absentTtlMs: 600_000 }, loader: { absentKeys: ['counter', 'once'] } } },
  commandTimeoutMs: 120_000,
})
const [a, b, c] = cluster.members as [Member, Member, Member]
for (const m of [a, b, c]) await m.request('watch', { group: 'n' })

interface Received {
  key: string
  kind: string
  version: number
  receivedAt: number
}

/** The q-quantile of sorted numbers. */
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN

t.test(`${UPDATES} concurrent increments from 3 processes end with exactly ${UPDATES}`, async (t) => {
  const counts = [334, 333, 333]
  const started = Date.now()
  const results = await Promise.all(
    [a, b, c].map((m, i) => m.request<Increments>('increments', { group: 'n', key: 'counter', count: counts[i] })),
  )
  const ms = Date.now() - started
  for (const r of results) t.same(r.errors, [], 'no update failed')
  const written = results.flatMap((r) => r.written).sort((x, y) => x - y)
  t.same(
    written,
    Array.from({ length: UPDATES }, (_, i) => i + 1),
    'each update wrote a different number, 1 to 1,000: none overwrote another',
  )
  for (const m of [a, b, c]) t.equal((await m.get('n', 'counter')).value, String(UPDATES), `${m.name} reads ${UPDATES}`)
  const stats = await Promise.all([a, b, c].map((m) => m.stats('n')))
  const updates = stats.reduce((n, s) => n + s.updates, 0)
  const retried = stats.reduce((n, s) => n + s.updateRetries, 0)
  t.equal(updates, UPDATES, 'updates counted')
  t.equal(
    retried,
    stats.reduce((n, s) => n + s.conflicts, 0),
    'every conflict was retried',
  )
  t.comment(`increments: ${updates} updates, ${retried} conflicts retried, final value ${written.at(-1)}, ${ms} ms`)
  t.comment(`per process (updates/retries): ${stats.map((s) => `${s.updates}/${s.updateRetries}`).join(', ')}`)

  // Change events: every process heard the increments as sets, in version order, ending with the last.
  const final = await a.request<{ version: number }>('getEntry', { group: 'n', key: 'counter' })
  const latencies: number[] = []
  const heard: number[] = []
  for (const m of [a, b, c]) {
    const sets = (await m.request<Received[]>('events', { group: 'n' })).filter((e) => e.key === 'counter' && e.kind === 'set')
    const versions = sets.map((e) => e.version)
    t.ok(
      versions.every((v, i) => i === 0 || v > versions[i - 1]!),
      `${m.name}: set events in strictly growing version order`,
    )
    t.equal(versions.at(-1), final.version, `${m.name}: the last event is the final value's`)
    t.ok(sets.length <= UPDATES, `${m.name}: at most one event per update (${sets.length})`)
    heard.push(sets.length)
    // A version is the owner's clock in µs when it stored the value: all 3 processes share this host's clock.
    for (const e of sets) latencies.push(e.receivedAt - e.version / 1000)
  }
  latencies.sort((x, y) => x - y)
  const fixed = (v: number) => v.toFixed(1)
  t.comment(`events heard per process: ${heard.join(', ')} of ${UPDATES} (an older set arriving after a newer one is not delivered)`)
  t.comment(
    `event delivery latency (owner stored -> listener called): p50 ${fixed(quantile(latencies, 0.5))} ms, p99 ${fixed(quantile(latencies, 0.99))} ms, max ${fixed(latencies.at(-1)!)} ms over ${latencies.length} events`,
  )
})

t.test('ifAbsent and a ConflictError carry across processes', async (t) => {
  const key = 'once'
  const first = await b.request<{ version: number }>('setIf', { group: 'n', key, value: '"b"', ifAbsent: true })
  t.ok(first.version > 0, 'the first ifAbsent set wins')
  const second = await c.request<{ conflict: number | null }>('setIf', { group: 'n', key, value: '"c"', ifAbsent: true })
  t.same(second, { conflict: first.version }, 'the second is refused with the version held')
  const entry = await a.request<{ value: string; version: number }>('getEntry', { group: 'n', key })
  t.same([entry.value, entry.version], ['b', first.version], 'getEntry from a third process')
  const won = await c.request<{ version: number }>('setIf', { group: 'n', key, value: '"c"', ifVersion: entry.version })
  const lost = await a.request<{ conflict: number | null }>('setIf', { group: 'n', key, value: '"a"', ifVersion: entry.version })
  t.same(lost, { conflict: won.version }, 'a stale ifVersion names the newer version')
  for (const m of [a, b, c]) t.equal((await m.get('n', key)).value, '"c"')
})
