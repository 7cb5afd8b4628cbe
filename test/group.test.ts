// A group on a single peer (it owns every key): the get path, stats, singleflight, loader errors,
// aborts, the byte bound, codecs, and every bad input rejected without changing anything.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { ClosedError, InvalidValueError, LoadError, Peer, type Group, type GroupOptions } from '../lib/index.js'
import { Origin } from './helpers/origin.js'
import type { TapTest } from './helpers/tap.js'

/** A peer alone in its cluster: every key is its own, so nothing here touches the network. */
function soloPeer(t: TapTest): Peer {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  return peer
}

function soloGroup(t: TapTest, origin: Origin, options: Partial<Omit<GroupOptions, 'load' | 'codec'>> = {}): Group {
  return soloPeer(t).group('g', { maxBytes: 1 << 20, load: origin.loaderFor('solo') as GroupOptions['load'], ...options })
}

t.test('a miss loads once; the next get is a main-cache hit', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  t.equal((await g.get('k')).toString(), 'value of k')
  t.equal((await g.get('k')).toString(), 'value of k')
  t.equal(origin.count('k'), 1)
  const s = g.stats()
  t.match(s, { group: 'g', gets: 2, mainHits: 1, hotHits: 0, loads: 1, peerLoads: 0, peerErrors: 0, inFlight: 0 })
  t.equal(s.main.items, 1)
  t.ok(s.main.bytes > 'value of k'.length, 'bytes count the value and its bookkeeping')
})

t.test('1000 concurrent gets of one key call the loader once', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  origin.hold()
  const gets = Array.from({ length: 1000 }, () => g.get('hot'))
  await origin.started()
  t.equal(g.stats().inFlight, 1)
  origin.release()
  const values = await Promise.all(gets)
  t.ok(values.every((v) => v.toString() === 'value of hot'))
  t.equal(origin.count(), 1)
  t.equal(g.stats().dedupedLoads, 999)
})

t.test('a loader error reaches every waiter as a LoadError and is not cached', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  origin.value = () => {
    throw new Error('database is down')
  }
  origin.hold()
  const gets = Array.from({ length: 50 }, () => g.get('k'))
  await origin.started()
  origin.release()
  const results = await Promise.allSettled(gets)
  for (const r of results) {
    t.equal(r.status, 'rejected')
    const err = (r as PromiseRejectedResult).reason
    t.type(err, LoadError)
    t.match(err, { code: 'PEERCACHE_ERR_LOAD', group: 'g', key: 'k', originMessage: 'database is down', message: /database is down/ })
  }
  t.equal(origin.count(), 1, 'one load for all waiters')
  t.equal(g.stats().loadErrors, 1)
  t.equal(g.stats().main.items, 0)
  origin.value = (key) => Buffer.from(`recovered ${key}`)
  t.equal((await g.get('k')).toString(), 'recovered k', 'the next get calls the loader again')
  t.equal(origin.count(), 2)
})

t.test('a flight always ends: sync throw, rejection, bad value', async (t) => {
  const endings: [string, NonNullable<GroupOptions['load']>, (err: unknown) => boolean][] = [
    [
      'sync throw',
      () => {
        throw new Error('sync')
      },
      (e) => e instanceof LoadError,
    ],
    ['rejection', () => Promise.reject(new Error('async')), (e) => e instanceof LoadError],
    [
      'non-Error thrown',
      () => {
        throw 'a string'
      },
      (e) => e instanceof LoadError && e.originMessage === 'a string',
    ],
    ['bad value', () => 42 as never, (e) => e instanceof InvalidValueError],
  ]
  for (const [what, failing, isExpected] of endings) {
    let calls = 0
    let fail = true
    const g = soloPeer(t).group('g', {
      maxBytes: 1 << 20,
      load: (key, ctx) => (calls++, fail ? failing(key, ctx) : Buffer.from('ok')),
    })
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => g.get('k', i % 2 ? { signal: new AbortController().signal } : {})),
    )
    t.ok(
      results.every((r) => r.status === 'rejected' && isExpected(r.reason)),
      `${what}: every waiter released with the error`,
    )
    t.equal(g.stats().inFlight, 0, `${what}: the flight is gone`)
    fail = false
    t.equal((await g.get('k')).toString(), 'ok', `${what}: the next get starts a new flight`)
    t.equal(calls, 2, `${what}: one call per flight`)
  }
})

t.test('a loader value that is not bytes: InvalidValueError (a TypeError) naming group and key; nothing cached', async (t) => {
  for (const bad of ['a string', 42, null, undefined, { a: 1 }, [1, 2], new ArrayBuffer(4)]) {
    const g = soloPeer(t).group('bytes-group', { maxBytes: 1 << 20, load: () => bad as never })
    const err = await g.get('the-key').catch((e: unknown) => e)
    t.type(err, InvalidValueError, `${Object.prototype.toString.call(bad)}`)
    t.type(err, TypeError)
    t.match(err, { code: 'PEERCACHE_ERR_INVALID_VALUE', group: 'bytes-group', key: 'the-key', message: /bytes-group.*the-key/ })
    t.equal(g.stats().main.items + g.stats().hot.items, 0)
  }
})

t.test('abort: the caller rejects at once, the flight goes on for the others, the loader runs once', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  origin.hold()
  const ac = new AbortController()
  const leaving = g.get('k', { signal: ac.signal })
  const staying = g.get('k', { signal: new AbortController().signal })
  const pinned = g.get('k')
  await origin.started()
  ac.abort(new Error('user navigated away'))
  await t.rejects(leaving, { message: 'user navigated away' }, 'rejects while the load is still held')
  t.equal(origin.calls[0]!.ctx.signal.aborted, false, 'the load goes on')
  origin.release()
  t.equal((await staying).toString(), 'value of k')
  t.equal((await pinned).toString(), 'value of k')
  t.equal(origin.count(), 1)
})

t.test('abort: when every waiter has left, the loader’s ctx.signal aborts and nothing is cached', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  origin.hold()
  const controllers = [new AbortController(), new AbortController(), new AbortController()]
  const gets = controllers.map((c) => g.get('k', { signal: c.signal }))
  await origin.started()
  for (const c of controllers) c.abort()
  const results = await Promise.allSettled(gets)
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError'))
  t.equal(origin.calls[0]!.ctx.signal.aborted, true)
  origin.release()
  t.equal(g.stats().inFlight, 0)
  t.equal(g.stats().main.items, 0)
  t.equal((await g.get('k')).toString(), 'value of k', 'a later get loads afresh')
  t.equal(origin.count(), 2)
  await t.rejects(g.get('other', { signal: AbortSignal.abort() }), { name: 'AbortError' }, 'an aborted signal starts nothing')
  t.equal(origin.count('other'), 0)
})

t.test('the byte bound holds after many values; a value larger than the cache is returned, not cached', async (t) => {
  const maxBytes = 64 * 1024
  const origin = new Origin()
  origin.value = (key) => Buffer.alloc(100 + ((Number(key.slice(1)) * 7919) % 4000), key)
  const g = soloGroup(t, origin, { maxBytes })
  let over = 0
  for (let i = 0; i < 1000; i++) {
    await g.get(`k${i}`)
    const s = g.stats()
    if (s.main.bytes + s.hot.bytes > maxBytes) over++
  }
  t.equal(over, 0, 'main.bytes + hot.bytes <= maxBytes after every get')
  t.ok(g.stats().main.evictions > 0)
  origin.value = () => Buffer.alloc(maxBytes * 2, 7)
  const big = await g.get('big')
  t.equal(big.length, maxBytes * 2, 'the big value is returned whole')
  t.equal(big[big.length - 1], 7)
  const loads = origin.count()
  await g.get('big')
  t.equal(origin.count(), loads + 1, 'it was not cached: the next get loads again')
  t.ok(g.stats().main.bytes <= maxBytes)
})

t.test('bad keys are rejected with InvalidKeyError, load nothing and count nothing', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  const bad: unknown[] = [
    undefined,
    null,
    42,
    {},
    ['k'],
    Symbol('k'),
    '',
    'x'.repeat(4097),
    'ü'.repeat(2049),
    '😀'.repeat(1025),
    '\ud800',
    'a\udc00b',
    'end\ud83d',
  ]
  for (const key of bad) {
    await t.rejects(
      g.get(key as string),
      { name: 'InvalidKeyError', code: 'PEERCACHE_ERR_INVALID_KEY', group: 'g' },
      `rejects ${typeof key === 'string' ? `${key.length}-unit string` : String(typeof key)}`,
    )
  }
  t.equal(origin.count(), 0)
  t.equal(g.stats().gets, 0)
  t.equal(g.stats().main.items, 0)
  for (const key of ['x'.repeat(4096), 'ü'.repeat(2048), '😀'.repeat(1024), 'k'])
    t.ok(await g.get(key), `accepts ${Buffer.byteLength(key)} bytes`)
  const small = soloPeer(t).group('small', { maxBytes: 1 << 20, maxKeyBytes: 8, load: () => Buffer.from('v') })
  await t.rejects(small.get('ü'.repeat(5)), { name: 'InvalidKeyError' }, 'maxKeyBytes counts UTF-8 bytes (10 > 8)')
  t.ok(await small.get('ü'.repeat(4)))
})

t.test('group names: [A-Za-z0-9._-]{1,64}, unique per peer', async (t) => {
  const peer = soloPeer(t)
  const load = () => Buffer.from('v')
  for (const name of ['', 'has space', 'a/b', 'ü', 'x'.repeat(65), 'tab\t', 'semi;colon', 42, undefined]) {
    t.throws(
      () => peer.group(name as string, { maxBytes: 1000, load }),
      { name: 'InvalidGroupError', code: 'PEERCACHE_ERR_INVALID_GROUP' },
      `rejects ${JSON.stringify(name)}`,
    )
  }
  for (const name of ['x'.repeat(64), 'a.b_c-D9', '.', '-']) t.ok(peer.group(name, { maxBytes: 1000, load }), `accepts ${name}`)
  t.throws(() => peer.group('a.b_c-D9', { maxBytes: 1000, load }), { name: 'InvalidGroupError', message: /exists/ }, 'a duplicate name')
})

t.test('bad group options throw InvalidOptionError and register nothing', async (t) => {
  const peer = soloPeer(t)
  const load = () => Buffer.from('v')
  const bad: [string, unknown][] = [
    ['no options', undefined],
    ['null options', null],
    ['no load', { maxBytes: 1000 }],
    ['load not a function', { maxBytes: 1000, load: 'db' }],
    ['maxBytes 0', { maxBytes: 0, load }],
    ['maxBytes -1', { maxBytes: -1, load }],
    ['maxBytes NaN', { maxBytes: Number.NaN, load }],
    ['maxBytes Infinity', { maxBytes: Number.POSITIVE_INFINITY, load }],
    ['maxBytes string', { maxBytes: '1000', load }],
    ['hotCacheRatio -0.1', { maxBytes: 1000, load, hotCacheRatio: -0.1 }],
    ['hotCacheRatio 0.6', { maxBytes: 1000, load, hotCacheRatio: 0.6 }],
    ['hotThreshold 0', { maxBytes: 1000, load, hotThreshold: 0 }],
    ['ttlMs -1', { maxBytes: 1000, load, ttlMs: -1 }],
    ['maxKeyBytes 0', { maxBytes: 1000, load, maxKeyBytes: 0 }],
    // a key the URL of a PUT or DELETE cannot carry (a 20 KB key got HTTP 431, and the owner counted as unreachable)
    ['maxKeyBytes 20000', { maxBytes: 1000, load, maxKeyBytes: 20_000 }],
    ['hotThreshold 300 (the sketch counts to 255)', { maxBytes: 1000, load, hotThreshold: 300 }],
    ['replicas 1.5', { maxBytes: 1000, load, replicas: 1.5 }],
    ['unknown option ttl', { maxBytes: 1000, load, ttl: 5 }],
    ['codec xml', { maxBytes: 1000, load, codec: 'xml' }],
    ['codec without decode', { maxBytes: 1000, load, codec: { encode: () => Buffer.alloc(0) } }],
  ]
  for (const [what, options] of bad) t.throws(() => peer.group('g', options as never), { name: 'InvalidOptionError' }, what)
  t.ok(peer.group('g', { maxBytes: 1000, load }), 'the name is still free')
})

t.test('codecs: string, json and custom values in and out', async (t) => {
  const peer = soloPeer(t)
  const s = peer.group('s', { maxBytes: 1 << 20, codec: 'string', load: (k) => `text ${k} ü` })
  t.equal(await s.get('a'), 'text a ü')
  t.equal(await s.get('a'), 'text a ü', 'from the cache, decoded')
  const j = peer.group('j', { maxBytes: 1 << 20, codec: 'json', load: (k) => ({ id: k, tags: ['x', 1] }) })
  t.same(await j.get('7'), { id: '7', tags: ['x', 1] })
  const upper = { encode: (v: string) => Buffer.from(v.toUpperCase()), decode: (b: Buffer) => `decoded:${b.toString()}` }
  const c = peer.group('c', { maxBytes: 1 << 20, codec: upper, load: (k) => `v-${k}` })
  t.equal(await c.get('q'), 'decoded:V-Q', 'the stored bytes are decoded on the way out')
  const bad = peer.group('bad-json', { maxBytes: 1 << 20, codec: 'json', load: () => undefined })
  await t.rejects(bad.get('k'), InvalidValueError)
})

t.test('ctx: the group name and ttlMs preset from the group option', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin, { ttlMs: 60_000 })
  await g.get('k')
  t.equal(origin.calls[0]!.ctx.group, 'g')
  t.equal(origin.calls[0]!.ctx.ttlMs, 60_000)
})

t.test('after close, a miss rejects with ClosedError', async (t) => {
  const origin = new Origin()
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  const g = peer.group('g', { maxBytes: 1000, load: origin.loaderFor('p') as GroupOptions['load'] })
  await peer.close()
  await t.rejects(g.get('k'), ClosedError)
  t.throws(() => peer.group('h', { maxBytes: 1000, load: () => Buffer.alloc(0) }), ClosedError)
  t.equal(origin.count(), 0)
})

t.test('close aborts the loads under way (LoadContext.signal: "or the peer closes")', async (t) => {
  const origin = new Origin()
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  const g = peer.group('g', { maxBytes: 1000, load: origin.loaderFor('p') as GroupOptions['load'] })
  origin.hold()
  const pending = g.get('k').catch((e: unknown) => e)
  await origin.started()
  await peer.close()
  t.equal(origin.calls[0]!.ctx.signal.aborted, true, 'the loader is told to stop')
  origin.release()
  await pending
})

t.test('stats: each get counted once by what answered it; joined gets counted as deduped too', async (t) => {
  const origin = new Origin()
  const g = soloGroup(t, origin)
  origin.value = (key) => {
    if (key === 'bad') throw new Error('no such key')
    return Buffer.from(key)
  }
  origin.hold()
  const joined = Promise.all([g.get('k'), g.get('k'), g.get('k')])
  await origin.started()
  origin.release()
  await joined
  await g.get('k')
  await t.rejects(g.get('bad'), LoadError)
  const s = g.stats()
  t.match(s, { gets: 5, loadGets: 3, dedupedGets: 2, mainHits: 1, failedGets: 1, peerGets: 0, replicaGets: 0, loads: 2 })
  t.equal(
    s.mainHits + s.hotHits + s.staleHits + s.peerGets + s.replicaGets + s.loadGets + s.failedGets,
    s.gets,
    'the sources add up to gets',
  )
})

t.test('a value larger than the group can cache is handed back, counted in tooLarge, and warned about once', async (t) => {
  // In a process of its own (the built library): tap keeps process warnings for itself.
  const script = `
    import { Peer } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}
    const warnings = []
    process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }))
    const peer = new Peer({ self: 'http://127.0.0.1:1' })
    let loads = 0
    const g = peer.group('big', { maxBytes: 4000, load: () => (loads++, Buffer.alloc(5000, 1)) })
    const lengths = []
    for (let i = 0; i < 3; i++) lengths.push((await g.get('k')).length)
    await new Promise((r) => setImmediate(r))
    await peer.close()
    console.log(JSON.stringify({ lengths, loads, tooLarge: g.stats().tooLarge, warnings }))`
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', script])
  const r = JSON.parse(stdout)
  t.same(r.lengths, [5000, 5000, 5000], 'the value comes back whole')
  t.equal(r.loads, 3, 'it is not cached, so each get loads it')
  t.equal(r.tooLarge, 3)
  const ours = r.warnings.filter((w: { code: string }) => w.code === 'PEERCACHE_VALUE_TOO_LARGE')
  t.equal(ours.length, 1, 'one warning for the group')
  t.match(ours[0]?.message, /group "big".*5000 bytes/)
})
