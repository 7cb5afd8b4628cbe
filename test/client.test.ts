// The client side of a fetch: any key reaches its owner unchanged, and an owner that cannot answer
// (hung before or after its headers, refusing connections, answering something that is not
// peercache) costs a bounded delay and then a local load: the get never fails.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Peer, type Group, type GroupOptions } from '../lib/index.js'
import { createPeerServer } from '../lib/listen.js'
import { Ring } from '../lib/ring.js'
import { settledWithin } from './helpers/bound.js'
import { TRICKY_KEYS } from './helpers/keys.js'
import { freePort, hungPeer } from './helpers/net.js'
import { Origin } from './helpers/origin.js'
import { findKey, numberedKeys, startPeers } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'

type Load = GroupOptions['load']
const timeouts = { peerTimeoutMs: 300, fetchTimeoutMs: 500, connectTimeoutMs: 300 }
/**
 * "It did not hang": ten times the longest timeout, never a measure of speed. (undici runs its
 * headers and body timeouts on timers of about 1 s resolution, so these fire after about 1 s.)
 */
const BOUND_MS = 10 * timeouts.fetchTimeoutMs

t.test('any key reaches its owner unchanged (the owner’s loader sees exactly that key)', async (t) => {
  const tp = await startPeers(t, 2)
  const origin = new Origin()
  const groups = tp.group('g', (i) => ({ maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor(`p${i}`) as Load }))
  const keys = [...TRICKY_KEYS, 'ü'.repeat(2048), '😀'.repeat(1024), '.'.repeat(4096)]
  for (const key of keys) {
    const owner = tp.ownerIndex(key)
    const value = await groups[1 - owner]!.get(key)
    t.equal(value.toString(), `value of ${key}`, `${JSON.stringify(key.slice(0, 20))}: the value of that key`)
    t.same(
      origin.calls.filter((c) => c.key === key).map((c) => c.by),
      [`p${owner}`],
      'loaded once, by the owner, under that exact key',
    )
  }
  t.equal(origin.count(), keys.length, 'no other key was loaded')
  t.same(
    groups.map((g) => g.stats().peerLoads).reduce((a, b) => a + b),
    keys.length,
    'every one crossed the wire',
  )
})

/** A peer whose only other member is `other`, with short timeouts, and a key `other` owns. */
async function askerOf(t: TapTest, other: string): Promise<{ g: Group; key: string; origin: Origin }> {
  const port = await freePort()
  const self = `http://127.0.0.1:${port}`
  const peer = new Peer({ self, peers: [self, other], ...timeouts })
  t.teardown(() => peer.close())
  await peer.listen({ port })
  const origin = new Origin()
  const g = peer.group('g', { maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor('asker') as Load })
  const ring = new Ring([self, other])
  return { g, key: findKey((k) => ring.owners(k, 1)[0] === other, numberedKeys('remote-')), origin }
}

/** Asserts that a get of a key owned by `other` settles with a local load and counts a peer error. */
async function fallsBackLocally(t: TapTest, other: string, what: string): Promise<void> {
  const { g, key, origin } = await askerOf(t, other)
  const value = await settledWithin(g.get(key), BOUND_MS)
  t.not(value, 'hung', `${what}: the get settled within ${BOUND_MS} ms`)
  t.equal(String(value), `value of ${key}`, `${what}: the get succeeded`)
  t.same(
    origin.calls.map((c) => c.by),
    ['asker'],
    `${what}: loaded locally`,
  )
  t.equal(g.stats().peerErrors, 1, `${what}: one peer error`)
  t.equal(g.stats().localLoads, 1)
  t.equal(g.stats().inFlight, 0)
}

t.test('a peer that accepts connections but never answers costs about the timeout, then a local load', async (t) => {
  const hung = await hungPeer(t)
  await fallsBackLocally(t, hung.url, 'hung peer')
  t.ok(hung.connections() >= 1, 'the hung peer was really asked')
})

t.test('a peer that sends its headers and then stalls: the body timeout, then a local load', async (t) => {
  const stalled = new Set<http.ServerResponse>()
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames', 'x-peercache-protocol': '2' })
    res.flushHeaders()
    stalled.add(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const res of stalled) res.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await fallsBackLocally(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'stalled body')
})

t.test('a peer that refuses connections: a local load at once', async (t) => {
  await fallsBackLocally(t, `http://127.0.0.1:${await freePort()}`, 'refused')
})

t.test('something that is not peercache answering: a local load', async (t) => {
  const answers: [string, http.RequestListener][] = [
    ['502 from a proxy', (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>')],
    ['200 with garbage', (_req, res) => res.end('this is not a frame stream')],
    ['connection reset', (req) => req.socket.destroy()],
  ]
  for (const [what, listener] of answers) {
    const server = http.createServer(listener)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
    await fallsBackLocally(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, what)
  }
})

t.test('many gets of different keys on a hung peer each settle within the bound', async (t) => {
  const hung = await hungPeer(t)
  const { g } = await askerOf(t, hung.url)
  const ring = new Ring([hung.url, 'x'])
  const keys = [...numberedKeys('many-', 2000)].filter((k) => ring.owners(k, 1)[0] === hung.url).slice(0, 24)
  // One get per event-loop turn, so they do not share a batch: each is its own request to the hung peer.
  const gets: Promise<string | 'hung'>[] = []
  for (const key of keys) {
    gets.push(settledWithin(g.get(key), BOUND_MS).then(String))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const results = await Promise.all(gets)
  t.equal(results.filter((r) => r === 'hung').length, 0, `all ${keys.length} settled within ${BOUND_MS} ms`)
  t.ok(
    results.every((r, i) => r === 'hung' || r === `value of ${keys[i]}`),
    'every get that settled has its value',
  )
})

t.test("keepAliveTimeoutMs is honoured against listen()'s own server: an idle socket is closed by the client first", async (t) => {
  // listen()'s server keeps idle sockets idleTimeoutMs (10 s) and says so (Keep-Alive: timeout=10),
  // which undici obeys over its own keepAliveTimeout unless capped: the option then did nothing.
  const owner = new Peer({ self: `http://127.0.0.1:${await freePort()}` })
  const server = createPeerServer(owner.handler, {})
  const sockets: Socket[] = []
  server.on('connection', (s: Socket) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(Number(new URL(owner.self).port), '127.0.0.1', resolve))
  // Batches only: the pool's sockets are what this is about (stream-client.test.ts: an idle stream).
  const asker = new Peer({ self: `http://127.0.0.1:${await freePort()}`, peers: [owner.self], keepAliveTimeoutMs: 200, peerStreams: false })
  t.teardown(async () => {
    await asker.close()
    await owner.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const load = (k: string) => `v:${k}`
  owner.group('g', { maxBytes: 1 << 20, replicas: 1, codec: 'string', load })
  const g = asker.group('g', { maxBytes: 1 << 20, replicas: 1, codec: 'string', load, hotCacheRatio: 0 })
  const key = findKey((k) => new Ring([owner.self, asker.self]).owners(k, 1)[0] === owner.self, numberedKeys('ka'))
  t.equal(await g.get(key), `v:${key}`)
  t.equal(sockets.length, 1, 'one connection')
  // Who closes first: the client after its 200 ms, or (as before) the server after its 10 s. The wait is
  // bounded far below the server's 10 s so that a client ignoring the option fails here, not a timer race.
  const ended = await Promise.race([
    new Promise((resolve) => sockets[0]!.once('end', () => resolve('the client hung up'))),
    new Promise((resolve) => setTimeout(() => resolve('still open after 6 s'), 6000)),
  ])
  t.equal(ended, 'the client hung up', 'the idle socket was closed by the client (its FIN reached the server)')
  t.equal(await g.get(key), `v:${key}`, 'fetched again (nothing is kept at the asker)')
  t.equal(sockets.length, 2, 'over a new connection')
})
