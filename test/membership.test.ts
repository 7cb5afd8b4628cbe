// Membership as a group sees it: only current members are tracked and probed, health() lists every
// member, writes do not wait on peers already down, and after close() nothing is cached or sent.
import { createHook } from 'node:async_hooks'
import { createServer, type Server } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { decodeBatch, encodeFrame } from '../lib/frames.js'
import { Peer } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { freePort, hungPeer } from './helpers/net.js'
import { findKey, startPeers } from './helpers/peers.js'
import { Ring } from '../lib/ring.js'
import type { TapTest } from './helpers/tap.js'

const fast = { peerTimeoutMs: 150, probeTimeoutMs: 150, connectTimeoutMs: 150, fetchTimeoutMs: 300 }

/** A listening peer on a free loopback port that knows `others`. */
async function listening(t: TapTest, others: string[], options = {}): Promise<Peer> {
  const port = await freePort()
  const peer = new Peer({ self: `http://127.0.0.1:${port}`, peers: others, ...fast, ...options })
  t.teardown(() => peer.close())
  await peer.listen({ port, host: '127.0.0.1' })
  return peer
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (ok()) return
    await sleep(10)
  }
  throw new Error(`not within ${ms} ms: ${what}`)
}

t.test('health() lists every other member, up until something says otherwise', async (t) => {
  const a = new Peer({ self: 'http://127.0.0.1:1', peers: ['http://127.0.0.1:2', 'http://127.0.0.1:3'] })
  t.teardown(() => a.close())
  t.same(
    a.health().map((h) => [h.peer, h.state, h.failures]),
    [
      ['http://127.0.0.1:2', 'up', 0],
      ['http://127.0.0.1:3', 'up', 0],
    ],
  )
  a.setPeers(['http://127.0.0.1:3'])
  t.same(
    a.health().map((h) => h.peer),
    ['http://127.0.0.1:3'],
    'a member that left is no longer listed',
  )
})

t.test('a peer removed while a batch to it is in flight is not tracked again, and never probed', async (t) => {
  const hung = await hungPeer(t)
  // A batch timeout long enough that setPeers surely comes first, however loaded the machine.
  const a = await listening(t, [hung.url], { peerTimeoutMs: 1500 })
  const g = a.group('g', { maxBytes: 1 << 20, replicas: 1, load: (k) => Buffer.from(`here:${k}`) })
  const ring = new Ring([a.self, hung.url])
  const key = findKey((k) => ring.owners(k, 1)[0] === hung.url)
  const pending = g.get(key)
  // (a batch, or the upgrade of a peer stream)
  await until('the batch reached the hung peer', () => hung.requests().some((r) => r.startsWith('POST ') || r.includes('/stream ')))
  a.setPeers([])
  t.equal((await pending).toString(), `here:${key}`, 'the get fell back to a local load')
  await sleep(400) // longer than a probe's cooldown: a tracked peer would have been probed by now
  t.same(a.health(), [], 'the departed peer is not in health()')
  t.same(
    hung.requests().filter((r) => r.includes('/health')),
    [],
    'no health probe was ever sent to the departed peer',
  )
})

/**
 * Two peers and a hung member (it reads requests and never answers), string groups with `replicas`;
 * `a` has taken the hung member down: a get of one of its keys failed over, and a probe confirmed.
 */
async function hungMemberDownForA(t: TapTest, replicas: number, options = {}) {
  const hung = await hungPeer(t)
  const tp = await startPeers(t, 2, { ...fast, ...options })
  const [a, b] = tp.peers as [Peer, Peer]
  const urls = [...tp.urls, hung.url]
  a.setPeers(urls)
  b.setPeers(urls)
  const groups = tp.group('g', () => ({ maxBytes: 1 << 20, replicas, codec: 'string' as const, load: (k: string) => `v:${k}` }))
  const ring = new Ring(urls)
  await groups[0]!.get(findKey((k) => ring.owners(k, 1)[0] === hung.url))
  await until('a sees the hung member down', () => a.health().find((h) => h.peer === hung.url)?.state === 'down')
  /** The PUT and DELETE request lines the hung member received from now on. */
  const from = hung.requests().length
  const writes = () =>
    hung
      .requests()
      .slice(from)
      .filter((r) => /^(PUT|DELETE) /.test(r))
  return { hung, a, b, groups, ring, writes }
}

t.test('set and remove do not wait on a member already down, and name it once', async (t) => {
  const { hung, a, b, groups, ring, writes } = await hungMemberDownForA(t, 1)
  const key = findKey((k) => ring.owners(k, 1)[0] === a.self)
  const set = await groups[0]!.set(key, 'new')
  t.same(set.unreachable, [hung.url], 'the down member is named once')
  const removed = await groups[0]!.remove(key)
  t.same(removed.unreachable, [hung.url], 'and once for remove')
  t.same(removed.acknowledged.sort(), [a.self, b.self].sort())
  t.same(writes(), [], 'no PUT or DELETE was sent to it: nobody waited on it')
})

t.test('a set of a key whose owner is down names that owner once, and does not wait on it', async (t) => {
  const { hung, groups, ring, writes } = await hungMemberDownForA(t, 2)
  const key = findKey((k) => ring.owners(k, 1)[0] === hung.url)
  const set = await groups[0]!.set(key, 'new')
  t.same(set.unreachable, [hung.url], 'the down owner is named once (the store and the drop of older copies both skipped it)')
  t.not(set.owner, hung.url, 'the next holder took the write')
  t.equal(await groups[1]!.get(key), 'new', 'and the other process reads it')
  t.same(writes(), [], 'no PUT or DELETE was sent to the down owner')
})

t.test('a set names a hung replica once when the asker knows it down and the owner does not', async (t) => {
  // The asker waits for an owner that waits on its replica.
  const { hung, b, groups, ring } = await hungMemberDownForA(t, 2, { fetchTimeoutMs: 3000 })
  t.equal(b.health().find((h) => h.peer === hung.url)?.state, 'up', 'b never asked the hung member anything')
  // b owns the key and copies it to the hung member (its replica); a drops older copies elsewhere.
  const key = findKey((k) => {
    const [owner, replica] = ring.owners(k, 2)
    return owner === b.self && replica === hung.url
  })
  const set = await groups[0]!.set(key, 'new')
  t.equal(set.owner, b.self)
  t.same(set.unreachable, [hung.url], 'named once, though both the owner and the asker missed it')
})

t.test('after close(), a load that finishes late is cached nowhere and sent nowhere', async (t) => {
  const tp = await startPeers(t, 2, fast)
  const [a, b] = tp.peers as [Peer, Peer]
  let finish: (v: string) => void = () => {}
  const slow = new Promise<string>((resolve) => (finish = resolve))
  const groups = tp.group('g', () => ({ maxBytes: 1 << 20, replicas: 2, codec: 'string' as const, load: () => slow }))
  const key = findKey((k) => tp.ownerIndex(k) === 0)
  const pending = groups[0]!.get(key).catch((e: unknown) => e)
  await until('the load started', () => groups[0]!.stats().loads === 1)
  await a.close()
  finish('late')
  await pending // its caller gets the late value or ClosedError; either way it ends
  await sleep(100)
  t.equal(groups[0]!.stats().main.items, 0, 'the late value is not cached at the closed peer')
  t.equal(groups[1]!.stats().replicaWrites, 0, 'nor copied to its replica')
  t.equal(b.health().length, 1)
})

/**
 * A replica that fails the first copy (503) and accepts the rest, and answers health probes: the
 * owner schedules a retry of the copy and keeps the replica in its routing. Counts the PUTs.
 */
async function flakyReplica(t: TapTest): Promise<{ url: string; puts: () => number }> {
  let puts = 0
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    if (req.method === 'POST' && req.url?.endsWith('/batch')) {
      // The owner's peek before its load: nothing here.
      const frames = decodeBatch(Buffer.concat(chunks)).flatMap((_, i) => encodeFrame(i, 'miss', Buffer.alloc(0)))
      res.setHeader('content-type', 'application/x-peercache-frames')
      return res.end(Buffer.concat(frames))
    }
    if (req.method === 'PUT' && puts++ === 0) res.statusCode = 503
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ ok: true, ready: true, protocol: PROTOCOL_VERSION }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, puts: () => puts }
}

t.test('a copy that failed is retried, but not once close() resolved', async (t) => {
  for (const closeFirst of [false, true]) {
    const replica = await flakyReplica(t)
    const port = await freePort()
    const self = `http://127.0.0.1:${port}`
    const peer = new Peer({ self, peers: [self, replica.url], ...fast })
    t.teardown(() => peer.close())
    await peer.listen({ port, host: '127.0.0.1' })
    const g = peer.group('g', { maxBytes: 1 << 20, replicas: 2, codec: 'string', load: (k) => `v:${k}` })
    const ring = new Ring([peer.self, replica.url])
    await g.get(findKey((k) => ring.owners(k, 1)[0] === peer.self))
    await until('the first copy was refused', () => replica.puts() === 1)
    if (closeFirst) {
      await peer.close()
      await sleep(3000) // past the retry's delay (2 s)
      t.equal(replica.puts(), 1, 'after close, the copy is not tried again')
    } else await until('the copy is tried again', () => replica.puts() > 1, 10_000)
  }
})

t.test('after close() resolves nothing is scheduled: copy retries, probes, hint watches and replays are all gone', async (t) => {
  // Every timer peercache's own code (lib/) sets while the test runs, by async id, until it fires
  // for good or is cleared. Unref'd timers count too (process.getActiveResourcesInfo() leaves them out).
  const LIB = fileURLToPath(new URL('../lib/', import.meta.url))
  const live = new Map<number, string>()
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout') return
      const stack = new Error().stack ?? ''
      const where = stack.split('\n').find((l) => l.includes(LIB))
      if (where) live.set(id, where.trim())
    },
    destroy(id) {
      live.delete(id)
    },
  }).enable()
  t.teardown(() => void hook.disable())
  const hung = await hungPeer(t)
  const port = await freePort()
  const peer = new Peer({ self: `http://127.0.0.1:${port}`, peers: [hung.url], ...fast })
  await peer.listen({ port, host: '127.0.0.1' })
  const g = peer.group('g', { maxBytes: 1 << 20, replicas: 2, codec: 'string', load: (k) => `v:${k}` })
  const ring = new Ring([peer.self, hung.url])
  const key = findKey((k) => ring.owners(k, 1)[0] === peer.self)
  // The copy to the hung replica fails: a retry is scheduled, the replica is probed, a hint waits for it.
  t.equal(await g.get(key), `v:${key}`)
  await until('the hung replica is down', () => peer.health()[0]?.state === 'down')
  t.ok(live.size > 0, `timers were running (${live.size})`)
  await peer.close()
  await sleep(0)
  t.same([...live.values()], [], 'none is left once close() resolved')
})
