// peer.registerMetrics on a real 3-peer cluster (in-process peers over loopback HTTP): every metric's
// name, type and labels, and its values after traffic whose outcome each step below states.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import t from 'tap'
import { InvalidOptionError, LoadError, Peer } from '../lib/index.js'
import { GROUP, eventually, loaded, pastTime, startGroupCluster } from './helpers/inproc.js'

/** Every metric: type and label names (the README's table says the same). */
const METRICS: Record<string, [type: string, labels: string[]]> = {
  peercache_gets_total: ['counter', ['group', 'source']],
  peercache_deduped_gets_total: ['counter', ['group']],
  peercache_loads_total: ['counter', ['group', 'outcome']],
  peercache_load_duration_seconds: ['histogram', ['group']],
  peercache_peer_fetches_total: ['counter', ['group', 'peer', 'outcome']],
  peercache_peer_fetch_duration_seconds: ['histogram', ['group', 'peer']],
  peercache_server_requests_total: ['counter', ['group', 'status']],
  peercache_sets_total: ['counter', ['group']],
  peercache_removes_total: ['counter', ['group']],
  peercache_replica_writes_total: ['counter', ['group']],
  peercache_conflicts_total: ['counter', ['group']],
  peercache_events_dropped_total: ['counter', ['group']],
  peercache_flights: ['gauge', ['group']],
  peercache_peer_loads: ['gauge', ['group', 'state']],
  peercache_cache_bytes: ['gauge', ['group', 'cache']],
  peercache_cache_max_bytes: ['gauge', ['group', 'cache']],
  peercache_cache_items: ['gauge', ['group', 'cache']],
  peercache_cache_evictions_total: ['counter', ['group', 'cache']],
  peercache_cache_expirations_total: ['counter', ['group', 'cache']],
  peercache_members: ['gauge', []],
  peercache_peer_up: ['gauge', ['peer']],
  peercache_peer_downs_total: ['counter', ['peer']],
  peercache_hints: ['gauge', []],
  peercache_hint_bytes: ['gauge', []],
  peercache_locks_held: ['gauge', []],
  peercache_lock_waiters: ['gauge', []],
  peercache_lock_grants_total: ['counter', []],
  peercache_lock_releases_total: ['counter', []],
  peercache_lock_expiries_total: ['counter', []],
}

/** Reads a registry's values: `get(name, labels)` is the value of the series with exactly those labels (0 if absent). */
async function read(registry: Registry) {
  const json = await registry.getMetricsAsJSON()
  const series = json.flatMap((m) =>
    m.values.map((v) => ({
      name: (v as { metricName?: string }).metricName ?? m.name,
      labels: v.labels as Record<string, string>,
      value: v.value,
    })),
  )
  const same = (a: Record<string, string>, b: Record<string, string | number>) =>
    Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => String(a[k]) === String(v))
  return {
    json,
    get: (name: string, labels: Record<string, string | number> = {}) =>
      series.find((s) => s.name === name && same(s.labels, labels))?.value ?? 0,
  }
}

t.test('names, types and labels', async (t) => {
  const registry = new Registry()
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  peer.registerMetrics(registry)
  const metrics = registry.getMetricsAsArray()
  const found = Object.fromEntries(
    await Promise.all(
      metrics.map(async (m) => {
        const got = await (m as unknown as { get(): Promise<{ name: string; type: string }> }).get()
        return [got.name, [got.type, (m as unknown as { labelNames: string[] }).labelNames]]
      }),
    ),
  )
  t.same(found, METRICS)
})

t.test('values after known traffic on a 3-peer cluster', async (t) => {
  const c = await startGroupCluster(t, 3)
  const registries = c.peers.map((p) => {
    const registry = new Registry()
    p.registerMetrics(registry)
    return registry
  })
  const [a, , cc] = c.groups as [(typeof c.groups)[0], (typeof c.groups)[0], (typeof c.groups)[0]]
  const bUrl = c.urls[1]!
  const failing = new Set<string>()
  const value = c.origin.value
  c.origin.value = (key, call) => {
    if (failing.has(key)) throw new Error(`no ${key} in the origin`)
    return value(key, call)
  }

  // A owns kOwn (B replicates it): a load (after a peek at B that misses), then a main hit.
  const kOwn = c.keyOf(0, 1, 'own')
  await a.get(kOwn)
  await a.get(kOwn)
  // B owns kFar, C replicates it: A fetches it from B, keeps a hot copy (hotThreshold 1), then hits it.
  const kFar = c.keyOf(1, 2, 'far')
  await a.get(kFar)
  await a.get(kFar)
  // Two gets of a key A owns while its load is held: one load, one deduped get; both from the load.
  const kDup = c.keyOf(0, 1, 'dup')
  c.origin.hold()
  const both = Promise.all([a.get(kDup), a.get(kDup)])
  await c.origin.started(c.origin.count() + 1)
  c.origin.release()
  await both
  // A load that fails at A: an error get and a failed load. Then C asks A for a key whose load fails there.
  const kBad = c.keyOf(0, 1, 'bad')
  failing.add(kBad)
  await t.rejects(a.get(kBad), LoadError)
  const kBadAtA = c.keyOf(0, 2, 'bad2')
  failing.add(kBadAtA)
  await t.rejects(cc.get(kBadAtA), LoadError)
  // A set and a remove of a key A owns (C replicates it): nothing asked of B.
  const kSet = c.keyOf(0, 2, 'set')
  await a.set(kSet, 'v')
  await a.remove(kSet)
  // A group made after registering is covered too (made on every peer; A owns the key).
  const [late] = c.peers.map((p) =>
    p.group('late', { maxBytes: 1 << 20, codec: 'string', ttlMs: 100, staleWhileRevalidateMs: 60_000, load: (k) => `late ${k}` }),
  )
  const kLate = c.keyOf(0, 1, 'late')
  await late!.get(kLate)
  await pastTime(Date.now() + 100)
  await late!.get(kLate) // expired, within the grace: served stale while one refresh runs
  await eventually(() => late!.stats().loads === 2 && late!.stats().inFlight === 0, 'the refresh is done')

  const ra = await read(registries[0]!)
  const g = { group: GROUP }
  const gets = (source: string) => ra.get('peercache_gets_total', { ...g, source })
  t.same(
    {
      main: gets('main'),
      hot: gets('hot'),
      stale: gets('stale'),
      peer: gets('peer'),
      replica: gets('replica'),
      load: gets('load'),
      error: gets('error'),
    },
    { main: 1, hot: 1, stale: 0, peer: 1, replica: 0, load: 3, error: 1 },
    "A's gets by source",
  )
  t.equal(
    gets('main') + gets('hot') + gets('stale') + gets('peer') + gets('replica') + gets('load') + gets('error'),
    a.stats().gets,
    'the sources add up to every get',
  )
  t.equal(ra.get('peercache_deduped_gets_total', g), 1, 'one deduped get')
  t.equal(ra.get('peercache_loads_total', { ...g, outcome: 'ok' }), 2, 'A loaded kOwn and kDup')
  t.equal(ra.get('peercache_loads_total', { ...g, outcome: 'error' }), 2, 'and failed kBad, and kBadAtA for C')
  t.equal(ra.get('peercache_load_duration_seconds_count', g), 4, 'one load duration per load')
  t.equal(ra.get('peercache_peer_fetches_total', { ...g, peer: bUrl, outcome: 'ok' }), 1, 'A fetched kFar from B')
  t.equal(ra.get('peercache_peer_fetch_duration_seconds_count', { ...g, peer: bUrl }), 1 + 3, 'and peeked at B before each of its 3 loads')
  t.equal(ra.get('peercache_peer_fetches_total', { ...g, peer: bUrl, outcome: 'miss' }), 3, 'the peeks found nothing')
  t.equal(ra.get('peercache_server_requests_total', { ...g, status: 'error' }), 1, 'A answered C with the origin’s error')
  t.equal(ra.get('peercache_sets_total', g), 1)
  t.equal(ra.get('peercache_removes_total', g), 1)
  t.same(
    [ra.get('peercache_gets_total', { group: 'late', source: 'load' }), ra.get('peercache_gets_total', { group: 'late', source: 'stale' })],
    [1, 1],
    'the late group: a load, then a stale hit',
  )
  t.equal(ra.get('peercache_cache_items', { ...g, cache: 'hot' }), 1, 'the hot copy of kFar')
  t.equal(ra.get('peercache_cache_items', { ...g, cache: 'main' }), a.stats().main.items)
  t.equal(ra.get('peercache_cache_bytes', { ...g, cache: 'main' }), a.stats().main.bytes)
  t.equal(ra.get('peercache_cache_max_bytes', { ...g, cache: 'hot' }), a.stats().hot.maxBytes)
  t.equal(ra.get('peercache_flights', g), 0)
  t.equal(ra.get('peercache_members'), 3)

  const rb = await read(registries[1]!)
  t.equal(rb.get('peercache_server_requests_total', { ...g, status: 'ok' }), 3, 'B served kFar to A and took the copies of kOwn and kDup')
  t.equal(rb.get('peercache_server_requests_total', { ...g, status: 'miss' }), 3, "and missed A's 3 peeks")
  t.equal(rb.get('peercache_gets_total', { ...g, source: 'load' }), 0, "B's own callers made no get: serving is not counted there")
  const rc = await read(registries[2]!)
  t.equal(rc.get('peercache_gets_total', { ...g, source: 'error' }), 1, "C's get of kBadAtA failed")
  t.equal(rc.get('peercache_peer_fetches_total', { ...g, peer: c.urls[0]!, outcome: 'error' }), 1, 'A answered with the origin’s error')

  // C leaves: A routes around it at once.
  t.same([ra.get('peercache_peer_up', { peer: c.urls[2]! }), ra.get('peercache_peer_up', { peer: bUrl })], [1, 1], 'both others up')
  await c.peers[2]!.close()
  const after = await read(registries[0]!)
  t.same([after.get('peercache_peer_up', { peer: c.urls[2]! }), after.get('peercache_peer_up', { peer: bUrl })], [0, 1], 'C down, B up')
  t.equal(after.get('peercache_peer_downs_total', { peer: c.urls[2]! }), 1)
  t.equal(
    after.json.find((m) => m.name === 'peercache_peer_up')?.values.length,
    2,
    'one peer_up series per other member, none for this one',
  )
  t.same([after.get('peercache_hints'), after.get('peercache_hint_bytes')], [0, 0], 'no hints yet')

  // A set of a key C replicates, while C is away: A keeps a hint for C's return, the value itself.
  const kHint = c.keyOf(0, 2, 'hint')
  t.same((await a.set(kHint, 'while C is away')).unreachable, [c.urls[2]!])
  const hinted = await read(registries[0]!)
  t.equal(hinted.get('peercache_hints'), 1, 'one write waits for C')
  t.equal(hinted.get('peercache_hint_bytes'), kHint.length + Buffer.byteLength('while C is away'), 'the bytes of its key and value')
})

t.test('peer loads: running and queued for a slot, while the origin is held', async (t) => {
  const c = await startGroupCluster(t, 2, { maxPeerLoads: 1 })
  const registry = new Registry()
  c.peers[0]!.registerMetrics(registry)
  const g = { group: GROUP }
  c.origin.hold()
  // B asks A (the owner) for two keys: A runs one load for B and queues the other.
  const asked = Promise.all([c.groups[1]!.get(c.keyOf(0, 1, 'one')), c.groups[1]!.get(c.keyOf(0, 1, 'two'))])
  await c.origin.started(1)
  await eventually(() => c.groups[0]!.stats().peerLoadsQueued === 1, 'the second load waits for the slot')
  const held = await read(registry)
  t.same(
    [held.get('peercache_peer_loads', { ...g, state: 'running' }), held.get('peercache_peer_loads', { ...g, state: 'queued' })],
    [1, 1],
  )
  c.origin.release()
  await asked
  const done = await read(registry)
  t.same(
    [done.get('peercache_peer_loads', { ...g, state: 'running' }), done.get('peercache_peer_loads', { ...g, state: 'queued' })],
    [0, 0],
  )
})

t.test('lease locks: held and waiting at their host, grants, releases and expiries', async (t) => {
  const c = await startGroupCluster(t, 2)
  const registry = new Registry()
  c.peers[0]!.registerMetrics(registry)
  const locks = async () => {
    const r = await read(registry)
    const names = ['locks_held', 'lock_waiters', 'lock_grants_total', 'lock_releases_total', 'lock_expiries_total']
    return Object.fromEntries(names.map((n) => [n, r.get(`peercache_${n}`)]))
  }
  const name = c.keyOf(0, 1, 'lock') // hosted by peer 0
  const first = await c.peers[1]!.lock(name, { ttlMs: 60_000 })
  const second = c.peers[1]!.lock(name, { ttlMs: 50 })
  await eventually(() => c.peers[0]!.lockState(name).waiting === 1, 'the second caller waits at the host')
  t.same(await locks(), { locks_held: 1, lock_waiters: 1, lock_grants_total: 1, lock_releases_total: 0, lock_expiries_total: 0 })
  t.same(await first.release(), { released: true })
  await second // its 50 ms lease then runs out
  await eventually(() => c.peers[0]!.lockState(name).holder === undefined, 'the second lease ran out')
  // The host notices the end when its timer fires or a caller asks: a third caller makes sure.
  await (await c.peers[1]!.lock(name, { ttlMs: 60_000 })).release()
  t.same(await locks(), { locks_held: 0, lock_waiters: 0, lock_grants_total: 3, lock_releases_total: 2, lock_expiries_total: 1 })
})

t.test("an owner that restarted fills its miss from its replica's copy: source replica", async (t) => {
  const c = await startGroupCluster(t, 2)
  const key = c.keyOf(0, 1)
  t.equal(await c.groups[0]!.get(key), loaded(key, 1))
  await eventually(() => c.groups[1]!.stats().replicaWrites === 1, 'the replica holds the key')
  await c.peers[0]!.close()
  const restarted = new Peer({ self: c.urls[0]!, peers: c.urls })
  t.teardown(() => restarted.close())
  await restarted.listen({ port: Number(new URL(c.urls[0]!).port), host: '127.0.0.1' })
  const registry = new Registry()
  restarted.registerMetrics(registry)
  const g = restarted.group(GROUP, { maxBytes: 1 << 20, codec: 'string', load: () => 'reloaded' })
  t.equal(await g.get(key), loaded(key, 1), 'the value held by the replica')
  const r = await read(registry)
  t.equal(r.get('peercache_gets_total', { group: GROUP, source: 'replica' }), 1)
  t.equal(r.get('peercache_loads_total', { group: GROUP, outcome: 'ok' }), 0, 'no origin load')
  t.equal(r.get('peercache_peer_fetches_total', { group: GROUP, peer: c.urls[1]!, outcome: 'ok' }), 1, 'one peek that found it')
})

t.test('bad registries are refused with InvalidOptionError, and nothing is registered', async (t) => {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  t.throws(() => peer.registerMetrics({} as Registry), InvalidOptionError)
  const registry = new Registry()
  const unregister = peer.registerMetrics(registry)
  const names = registry.getMetricsAsArray().length
  const other = new Peer({ self: 'http://127.0.0.1:2' })
  t.teardown(() => other.close())
  t.throws(() => other.registerMetrics(registry), InvalidOptionError, 'one Peer per registry')
  t.equal(registry.getMetricsAsArray().length, names, 'the failed call registered nothing')
  unregister()
  t.equal(registry.getMetricsAsArray().length, 0, 'unregister removes every metric')
  other.registerMetrics(registry)
  t.equal(registry.getMetricsAsArray().length, names, 'and the registry can take another peer')
})

t.test('an OpenMetrics registry renders the counters with _total and unregisters them all', async (t) => {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  peer.group('g', { maxBytes: 1 << 20, load: () => Buffer.from('v') })
  // prom-client's types take no argument here, its code does: the OpenMetrics flavour of a registry.
  const registry = new (Registry as unknown as new (contentType: string) => Registry)(Registry.OPENMETRICS_CONTENT_TYPE)
  const unregister = peer.registerMetrics(registry)
  const text = await registry.metrics()
  t.match(text, /^# TYPE peercache_gets counter$/m)
  t.match(text, /^peercache_gets_total\{group="g",source="main"\} 0$/m)
  unregister()
  t.equal(registry.getMetricsAsArray().length, 0, 'every metric removed, renamed or not')
})

t.test('without prom-client installed, peercache works and registerMetrics says what is missing', async (t) => {
  // The built package alone in a node_modules of its own, beside its dependencies (linked) but no prom-client.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'peercache-no-prom-'))
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))
  const repo = fileURLToPath(new URL('..', import.meta.url))
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  const modules = path.join(root, 'node_modules')
  fs.mkdirSync(path.join(modules, 'peercache'), { recursive: true })
  fs.cpSync(path.join(repo, 'dist'), path.join(modules, 'peercache', 'dist'), { recursive: true })
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(modules, 'peercache', 'package.json'))
  for (const dep of Object.keys(pkg.dependencies)) fs.symlinkSync(path.join(repo, 'node_modules', dep), path.join(modules, dep))
  const script = `
    import { Peer, InvalidOptionError } from 'peercache'
    const peer = new Peer({ self: 'http://127.0.0.1:1' })
    const g = peer.group('g', { maxBytes: 1 << 20, codec: 'string', load: (k) => 'v' + k })
    const value = await g.get('1')
    let error
    try { peer.registerMetrics({ registerMetric() {}, getSingleMetric() {}, removeSingleMetric() {} }) } catch (err) { error = err }
    await peer.close()
    console.log(JSON.stringify({ value, invalidOption: error instanceof InvalidOptionError, message: error?.message }))
  `
  fs.writeFileSync(path.join(root, 'main.mjs'), script)
  const run = spawnSync(process.execPath, [path.join(root, 'main.mjs')], { cwd: root, encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!)
  t.equal(out.value, 'v1', 'a get works')
  t.ok(out.invalidOption, 'registerMetrics throws InvalidOptionError')
  t.match(out.message, /npm install prom-client/, 'saying what to install')
})
