// Three in-process peers on their own loopback ports: one owner per key whatever the list order,
// a herd over every peer loads once, hot copies, errors and aborts across the wire, codecs on the
// wire, and the Peer's options and lifecycle.
import t from 'tap'
import { InvalidValueError, LoadError, Peer, type Codec, type GroupOptions } from '../lib/index.js'
import { eventually } from './helpers/inproc.js'
import { Ring } from '../lib/ring.js'
import { Origin } from './helpers/origin.js'
import { findKey, numberedKeys, startPeers, type TestPeers } from './helpers/peers.js'

type Load = GroupOptions['load']

/** Group `name` on every peer, loading from `origin` (the loader of peer i is named p<i>). */
function groupOn(tp: TestPeers, origin: Origin, options: Partial<GroupOptions> = {}, name = 'g') {
  return tp.group(name, (i) => ({ maxBytes: 1 << 20, replicas: 1, ...options, load: origin.loaderFor(`p${i}`) as Load }))
}

/** A key owned by peer `owner`, and the index of a peer that does not own it. */
function remoteKey(tp: TestPeers, owner: number, prefix = 'k'): { key: string; asker: number } {
  return { key: findKey((k) => tp.ownerIndex(k) === owner, numberedKeys(prefix)), asker: (owner + 1) % tp.peers.length }
}

t.test('every key has one owner, the same on every peer, whatever order each was given the list in', async (t) => {
  const orders = [(u: string[]) => u, (u: string[]) => [...u].reverse(), (u: string[]) => [u[1]!, u[2]!, u[0]!]]
  // Peer 2 is also given a duplicate and leaves itself out (it is added): the same set.
  const tp = await startPeers(t, 3, {}, (i, urls) => (i === 2 ? [urls[0]!, urls[1]!, urls[0]!] : orders[i]!(urls)))
  t.same(tp.peers[0]!.peers, tp.peers[1]!.peers)
  t.same(tp.peers[1]!.peers, tp.peers[2]!.peers)
  const origin = new Origin()
  const groups = groupOn(tp, origin)
  const keys = [...numberedKeys('owner-', 60)]
  for (const key of keys) await Promise.all(groups.map((g) => g.get(key)))
  for (const key of keys) {
    const loaders = origin.calls.filter((c) => c.key === key).map((c) => c.by)
    t.same(loaders, [`p${tp.ownerIndex(key)}`], `${key}: loaded once, by its owner`)
  }
  t.ok(new Set(keys.map((k) => tp.ownerIndex(k))).size === 3, 'the keys are spread over the 3 peers')
})

for (const replicas of [1, 2]) {
  t.test(`replicas ${replicas}: 1000 concurrent gets of one key spread over 3 peers call the loader once`, async (t) => {
    const tp = await startPeers(t, 3)
    const origin = new Origin()
    const groups = groupOn(tp, origin, { replicas })
    const key = 'herd'
    const owner = tp.ownerIndex(key)
    origin.hold()
    const gets = Array.from({ length: 1000 }, (_, i) => groups[i % 3]!.get(key))
    // Hold the origin until both other peers' requests have joined the owner's flight.
    await eventually(() => groups[owner]!.stats().serverRequests >= 2, 'both non-owners asked the owner')
    origin.release()
    const values = await Promise.all(gets)
    t.ok(values.every((v) => v.toString() === 'value of herd'))
    t.equal(origin.count(), 1, 'one origin load')
    t.equal(origin.calls[0]!.by, `p${owner}`)
    const others = groups.filter((_, i) => i !== owner)
    t.same(
      others.map((g) => g.stats().peerLoads),
      [1, 1],
      'each other peer fetched once for all its gets',
    )
    t.same(
      others.map((g) => g.stats().loads),
      [0, 0],
    )
  })
}

t.test('a key fetched again becomes a hot copy; a one-off key does not', async (t) => {
  const tp = await startPeers(t, 2)
  const origin = new Origin()
  const groups = groupOn(tp, origin)
  const { key, asker } = remoteKey(tp, 0)
  const once = findKey((k) => tp.ownerIndex(k) === 0 && k !== key, numberedKeys('once-'))
  const g = groups[asker]!
  await g.get(once)
  await g.get(key)
  await g.get(key)
  t.equal(g.stats().peerLoads, 3)
  t.equal(g.stats().hot.items, 1, 'only the key fetched twice is kept')
  await g.get(key)
  t.equal(g.stats().hotHits, 1, 'then answered from the hot cache')
  t.equal(g.stats().peerLoads, 3)
  t.ok(g.stats().main.bytes + g.stats().hot.bytes <= 1 << 20)
})

t.test('the byte bound holds on every peer with replicas and hot copies filling it', async (t) => {
  const maxBytes = 48 * 1024
  const tp = await startPeers(t, 3)
  const origin = new Origin()
  origin.value = (key) => Buffer.alloc(200 + ((Number(key.slice(5)) * 7919) % 3000), 1)
  const groups = groupOn(tp, origin, { maxBytes, replicas: 2, hotThreshold: 1, hotCacheRatio: 0.5 })
  const keys = [...numberedKeys('size-', 300)]
  let over = 0
  for (let round = 0; round < 2; round++) {
    for (const [i, g] of groups.entries()) {
      await Promise.all(keys.filter((_, k) => k % 3 === (i + round) % 3).map((k) => g.get(k)))
      for (const s of groups.map((x) => x.stats())) if (s.main.bytes + s.hot.bytes > maxBytes) over++
    }
  }
  t.equal(over, 0, 'main.bytes + hot.bytes <= maxBytes on every peer after every wave')
  const stats = groups.map((g) => g.stats())
  t.ok(
    stats.every((s) => s.main.evictions > 0),
    'every main cache had to evict',
  )
  t.ok(stats.some((s) => s.hot.items > 0) && stats.some((s) => s.replicaWrites > 0), 'hot copies and replica copies were made')
})

t.test("the owner's loader error reaches every waiter on every peer as a LoadError, loads once, is not cached", async (t) => {
  const tp = await startPeers(t, 3)
  const origin = new Origin()
  origin.value = () => {
    throw new Error('upstream 503: try later')
  }
  const groups = groupOn(tp, origin)
  const { key } = remoteKey(tp, 1)
  origin.hold()
  const gets = Array.from({ length: 90 }, (_, i) => groups[i % 3]!.get(key))
  await eventually(() => groups[1]!.stats().serverRequests >= 2, 'both other peers joined')
  origin.release()
  const results = await Promise.allSettled(gets)
  for (const [i, r] of results.entries()) {
    if (r.status !== 'rejected' || !(r.reason instanceof LoadError)) {
      t.fail(`get ${i} did not reject with a LoadError`, { result: r })
      continue
    }
    t.equal(r.reason.originMessage, 'upstream 503: try later')
    t.match(r.reason.message, /upstream 503: try later/)
    if (i % 3 !== 1) t.equal(r.reason.peer, tp.urls[1], 'a remote error names the owner')
  }
  t.equal(origin.count(), 1, 'no second origin load anywhere')
  t.same(
    groups.map((g) => g.stats().main.items + g.stats().hot.items),
    [0, 0, 0],
    'nothing cached',
  )
  t.same(
    groups.map((g) => g.stats().localLoads),
    [0, 0, 0],
    'an origin error is no reason to load locally',
  )
  origin.value = (k) => Buffer.from(`ok ${k}`)
  t.equal((await groups[0]!.get(key)).toString(), `ok ${key}`, 'the next get loads again')
  t.equal(origin.count(), 2)
})

t.test("the owner's loader returning a non-byte value: InvalidValueError at the asker, nothing cached", async (t) => {
  const tp = await startPeers(t, 2)
  const origin = new Origin()
  origin.value = () => ({ not: 'bytes' })
  const groups = groupOn(tp, origin, {}, 'typed')
  const { key, asker } = remoteKey(tp, 0)
  const err = await groups[asker]!.get(key).catch((e: unknown) => e)
  t.type(err, InvalidValueError)
  t.type(err, TypeError)
  t.match(err, { group: 'typed', key, message: /typed.*cannot be stored/ })
  t.same(
    groups.map((g) => g.stats().main.items + g.stats().hot.items),
    [0, 0],
  )
  t.equal(groups[asker]!.stats().inFlight, 0)
})

t.test('abort across the wire: the caller leaves at once; the owner’s load stops when nobody waits', async (t) => {
  const tp = await startPeers(t, 2)
  const origin = new Origin()
  const groups = groupOn(tp, origin)
  const { key, asker } = remoteKey(tp, 0)
  origin.hold()
  const ac = new AbortController()
  const lone = groups[asker]!.get(key, { signal: ac.signal })
  await origin.started()
  ac.abort(new Error('request cancelled'))
  await t.rejects(lone, { message: 'request cancelled' })
  await eventually(() => origin.calls[0]!.ctx.signal.aborted, "the owner's ctx.signal aborts")
  origin.release()
  t.equal(groups[asker]!.stats().inFlight, 0)

  // With another waiter left, the shared flight goes on and the loader runs once more in all.
  origin.hold()
  const leaving = new AbortController()
  const a = groups[asker]!.get(key, { signal: leaving.signal })
  const b = groups[asker]!.get(key)
  await origin.started(2)
  leaving.abort()
  await t.rejects(a, { name: 'AbortError' })
  origin.release()
  t.equal((await b).toString(), `value of ${key}`)
  t.equal(origin.count(), 2)
})

t.test('codecs round-trip through a remote fetch: string, json, custom', async (t) => {
  const tp = await startPeers(t, 2)
  const { key, asker } = remoteKey(tp, 0, 'codec-')
  const strings = tp.group<string>('s', () => ({ maxBytes: 1 << 20, codec: 'string', load: (k) => `ü text for ${k} 😀` }))
  t.equal(await strings[asker]!.get(key), `ü text for ${key} 😀`)
  const json = tp.group<unknown>('j', () => ({
    maxBytes: 1 << 20,
    codec: 'json',
    load: (k) => ({ k, list: [1, 'two', null], nested: { ok: true } }),
  }))
  t.same(await json[asker]!.get(key), { k: key, list: [1, 'two', null], nested: { ok: true } })
  // A custom codec: the owner encodes, the asker decodes the bytes that crossed the wire.
  const point: Codec<{ x: number; y: number }> = {
    encode: (p) => Buffer.from(new Float64Array([p.x, p.y]).buffer),
    decode: (b) => {
      const f = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + 16))
      return { x: f[0]!, y: f[1]! }
    },
  }
  const points = tp.group<{ x: number; y: number }>('p', () => ({
    maxBytes: 1 << 20,
    codec: point,
    load: (k) => ({ x: k.length, y: -0.5 }),
  }))
  t.same(await points[asker]!.get(key), { x: key.length, y: -0.5 })
  t.equal(
    strings[asker]!.stats().peerLoads + json[asker]!.stats().peerLoads + points[asker]!.stats().peerLoads,
    3,
    'all three came from the owner',
  )
})

t.test('bad Peer options throw InvalidOptionError synchronously', async (t) => {
  const self = 'http://127.0.0.1:7001'
  const bad: [string, unknown][] = [
    ['no options', undefined],
    ['null', null],
    ['no self', {}],
    ['self not a URL', { self: 'localhost:7001' }],
    ['self ftp', { self: 'ftp://127.0.0.1:7001' }],
    ['self with a path', { self: 'http://127.0.0.1:7001/app' }],
    ['self with a query', { self: 'http://127.0.0.1:7001/?x=1' }],
    ['self a number', { self: 7001 }],
    ['peers not an array', { self, peers: 'http://127.0.0.1:7002' }],
    ['peers with a non-URL', { self, peers: ['http://127.0.0.1:7002', 'nope'] }],
    ['basePath without slashes', { self, basePath: 'cache' }],
    ['basePath without the trailing slash', { self, basePath: '/cache' }],
    ['basePath with a space', { self, basePath: '/a b/' }],
    ['fetchTimeoutMs 0', { self, fetchTimeoutMs: 0 }],
    ['fetchTimeoutMs negative', { self, fetchTimeoutMs: -5 }],
    ['fetchTimeoutMs NaN', { self, fetchTimeoutMs: Number.NaN }],
    ['fetchTimeoutMs string', { self, fetchTimeoutMs: '100' }],
    ['connectTimeoutMs 0', { self, connectTimeoutMs: 0 }],
    ['connections 0', { self, connections: 0 }],
    ['keepAliveTimeoutMs Infinity', { self, keepAliveTimeoutMs: Number.POSITIVE_INFINITY }],
    // undici takes integers only: a fraction was accepted, then refused on every request (the peer went suspect)
    ['peerTimeoutMs 1000.5', { self, peerTimeoutMs: 1000.5 }],
    ['connectTimeoutMs 0.5', { self, connectTimeoutMs: 0.5 }],
    ['probeTimeoutMs 10.1', { self, probeTimeoutMs: 10.1 }],
    ['connections 1.5', { self, connections: 1.5 }],
    ['fanOut 2.5', { self, fanOut: 2.5 }],
    // the server refuses batches over 1,024 keys: a larger maxBatchKeys cost every batch it filled
    ['maxBatchKeys 5000', { self, maxBatchKeys: 5000 }],
    // a misspelt option silently kept its default
    ['unknown option peerTimeout', { self, peerTimeout: 50 }],
    ['unknown option replicas (a group option)', { self, replicas: 3 }],
  ]
  for (const [what, options] of bad) t.throws(() => new Peer(options as never), { name: 'InvalidOptionError' }, what)
  for (const vnodes of [0, -1, 1.5, 10_001, 'many'])
    t.throws(() => new Peer({ self, vnodes: vnodes as number }), { name: 'InvalidOptionError' }, `vnodes ${vnodes}`)
  const err = (() => {
    try {
      new Peer({ self, peerTimout: 10 } as never)
    } catch (e) {
      return e as Error
    }
  })()
  t.match(err?.message, /no option "peerTimout"; it has self, peers, .*peerTimeoutMs/, 'an unknown option is named, with the valid ones')
  t.ok(
    new Peer({ self, maxBatchKeys: 1024, peerTimeoutMs: undefined }),
    'the largest batch the protocol carries; undefined keeps a default',
  )
  const ok = new Peer({ self: 'HTTP://127.0.0.1:7001/', peers: ['http://127.0.0.1:7002'] })
  t.equal(ok.self, 'http://127.0.0.1:7001', 'self is reduced to its origin')
  t.same(ok.peers, ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'], 'self joins the list, sorted')
  await ok.close()
})

t.test('lifecycle: listen once, close twice, nothing after close', async (t) => {
  const tp = await startPeers(t, 1)
  const peer = tp.peers[0]!
  await t.rejects(peer.listen({ port: 0 }), { name: 'InvalidOptionError' }, 'listening twice')
  await peer.close()
  await peer.close()
  await t.rejects(peer.listen({ port: 0 }), { name: 'ClosedError' })
  t.throws(() => peer.setPeers([]), { name: 'ClosedError' })
})

t.test('setPeers: a new member takes about 1/N of the keys; the others stay where they were', async (t) => {
  const tp = await startPeers(t, 3)
  const origin = new Origin()
  const groups = groupOn(tp, origin)
  const keys = [...numberedKeys('move-', 300)]
  await Promise.all(keys.map((k) => groups[0]!.get(k)))
  t.equal(origin.count(), 300)
  // The newcomer is on the ring only: nobody listens there, so its keys fall back to local loads.
  const newcomer = 'http://127.0.0.1:1'
  for (const p of tp.peers) p.setPeers([...tp.urls, newcomer])
  t.same(tp.peers[0]!.peers, [...tp.urls, newcomer].sort())
  const ring = new Ring([...tp.urls, newcomer])
  const moved = keys.filter((k) => ring.owners(k, 1)[0] === newcomer)
  t.ok(moved.length > 300 * 0.1 && moved.length < 300 * 0.45, `${moved.length} of 300 keys now belong to the newcomer`)
  await Promise.all(keys.filter((k) => !moved.includes(k)).map((k) => groups[1]!.get(k)))
  t.equal(origin.count(), 300, 'keys that did not move are served by their old owner: no reload')
  // Asked of a peer that did not own it before (an old owner still has it in its main cache).
  const g = groups[1]!
  await g.get(moved.find((k) => tp.ownerIndex(k) !== 1)!)
  t.equal(g.stats().peerErrors, 1, 'a moved key goes to the newcomer first')
  t.equal(g.stats().localLoads, 1)
})
