// The server side: peer.handler mounted in a server of one's own (requests outside the base path go
// to next), the answers of the protocol's routes, and the forwarding-loop pitfall: a request from a
// peer is served by the receiver itself, never forwarded, even when two peers disagree on the owner.
import t from 'tap'
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { PROTOCOL_VERSION, Peer, type GroupOptions } from '../lib/index.js'
import { keyPath } from '../lib/protocol.js'
import { Ring } from '../lib/ring.js'
import { settledWithin } from './helpers/bound.js'
import { freePort } from './helpers/net.js'
import { Origin } from './helpers/origin.js'
import { findKey, numberedKeys, startPeers } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'

type Load = GroupOptions['load']
const BASE = '/_peercache/'

/** An app server on loopback whose listener is `listener`; closed at teardown. */
async function appServer(t: TapTest, listener: http.RequestListener): Promise<string> {
  const server = http.createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A raw request through undici (no URL parsing of the path); the whole answer. */
async function raw(origin: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}) {
  const res = await request(`${origin}${path}`, { method: (options.method ?? 'GET') as 'GET', headers: options.headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json: () => JSON.parse(body.toString()) as { error?: string; message?: string; ok?: boolean; protocol?: number },
  }
}

t.test('peer.handler mounted in http.createServer serves peers; other paths go to next()', async (t) => {
  const origin = new Origin()
  let mounted: Peer | undefined
  const appUrl = await appServer(t, (req, res) =>
    mounted!.handler(req, res, () => {
      res.setHeader('content-type', 'text/plain')
      res.end(`app saw ${req.url}`)
    }),
  )
  const otherPort = await freePort()
  const otherUrl = `http://127.0.0.1:${otherPort}`
  mounted = new Peer({ self: appUrl, peers: [appUrl, otherUrl] })
  const other = new Peer({ self: otherUrl, peers: [appUrl, otherUrl] })
  t.teardown(() => Promise.all([mounted!.close(), other.close()]))
  await other.listen({ port: otherPort })
  const [gm, go] = [mounted, other].map((p, i) => p.group('g', { maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor(`p${i}`) as Load }))
  const ring = new Ring([appUrl, otherUrl])
  const keyOfApp = findKey((k) => ring.owners(k, 1)[0] === appUrl)
  const keyOfOther = findKey((k) => ring.owners(k, 1)[0] === otherUrl)
  t.equal((await go!.get(keyOfApp)).toString(), `value of ${keyOfApp}`)
  t.equal((await gm!.get(keyOfOther)).toString(), `value of ${keyOfOther}`)
  t.same(
    origin.calls.map((c) => [c.by, c.key]),
    [
      ['p0', keyOfApp],
      ['p1', keyOfOther],
    ],
    'each key loaded by its owner, one through the mounted handler',
  )
  t.equal(gm!.stats().serverRequests, 1)

  for (const path of ['/', '/users/42', '/_peercache', '/_peercachex/g/k']) {
    const r = await raw(appUrl, path)
    t.equal(r.body.toString(), `app saw ${path}`, `${path} went to next()`)
  }
  t.equal((await raw(appUrl, `${BASE}health`)).status, 200, 'the base path did not')
})

t.test('without next, a request outside the base path is a 404', async (t) => {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  const url = await appServer(t, peer.handler)
  const r = await raw(url, '/somewhere')
  t.equal(r.status, 404)
})

t.test('the protocol routes answer with status and a machine-readable reason', async (t) => {
  const tp = await startPeers(t, 1)
  const url = tp.urls[0]!
  const origin = new Origin()
  origin.value = (key) => {
    if (key === 'broken') throw new Error('the origin said no')
    return Buffer.from(`value of ${key}`)
  }
  tp.peers[0]!.group('g', { maxBytes: 1 << 20, maxKeyBytes: 16, load: origin.loaderFor('p0') as Load })

  const health = await raw(url, `${BASE}health`)
  t.equal(health.status, 200)
  t.match(health.json(), { ok: true, protocol: PROTOCOL_VERSION })

  const value = await raw(url, keyPath(BASE, 'g', 'k1'))
  t.equal(value.status, 200)
  t.equal(value.body.toString(), 'value of k1')
  t.ok(Number(value.headers['x-peercache-version']) > 0, 'a version header')

  const head = await raw(url, keyPath(BASE, 'g', 'k1'), { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.body.length, 0)

  const cases: [string, string, Record<string, string>, string, number, string][] = [
    ['unknown group', keyPath(BASE, 'nope', 'k'), {}, 'GET', 404, 'unknown-group'],
    ['too many segments', `${BASE}g/a/b`, {}, 'GET', 400, 'bad-request'],
    ['bad percent-encoding', `${BASE}g/%E0%A4%A`, {}, 'GET', 400, 'bad-request'],
    ['a key too long', keyPath(BASE, 'g', 'x'.repeat(17)), {}, 'GET', 400, 'bad-request'],
    ['a lone surrogate', `${BASE}g/%ED%A0%80`, {}, 'GET', 400, 'bad-request'],
    ['another protocol version', keyPath(BASE, 'g', 'k'), { 'x-peercache-protocol': '999' }, 'GET', 400, 'protocol'],
    ['a method not allowed', keyPath(BASE, 'g', 'k'), {}, 'PATCH', 405, 'bad-request'],
    ['an origin error', keyPath(BASE, 'g', 'broken'), {}, 'GET', 500, 'load'],
  ]
  for (const [what, path, headers, method, status, reason] of cases) {
    const r = await raw(url, path, { method, headers })
    t.equal(r.status, status, `${what}: ${status}`)
    t.equal(r.headers['x-peercache-error'], reason, `${what}: reason ${reason}`)
    t.type(r.json().message, 'string')
  }
  t.match((await raw(url, keyPath(BASE, 'g', 'broken'))).json(), { error: 'load', message: 'the origin said no' }, "the loader's message")
  t.equal(origin.count('broken'), 2, 'origin errors are not cached')
})

t.test('a closing peer answers 503 closing', async (t) => {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  peer.group('g', { maxBytes: 1000, load: () => Buffer.from('v') })
  const url = await appServer(t, peer.handler)
  await peer.close()
  const r = await raw(url, keyPath(BASE, 'g', 'k'))
  t.equal(r.status, 503)
  t.equal(r.headers['x-peercache-error'], 'closing')
  t.equal((await raw(url, `${BASE}health`)).status, 503)
})

/** Peers on loopback built by `make(urls)`, listening; closed at teardown. */
async function peersWith(
  t: TapTest,
  n: number,
  make: (self: string, urls: string[], i: number) => Peer,
): Promise<{ peers: Peer[]; urls: string[] }> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()))
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const peers = urls.map((self, i) => make(self, urls, i))
  t.teardown(() => Promise.all(peers.map((p) => p.close())))
  await Promise.all(peers.map((p, i) => p.listen({ port: ports[i] })))
  return { peers, urls }
}

t.test('forwarding loops: two peers that each think the other owns a key both get it, with no hang', async (t) => {
  // With the same settings two rings that hold both peers always agree on which of the two is
  // nearer a key; differing vnodes (a rolling config change) make them disagree both ways.
  const vnodes = [160, 7]
  const { peers, urls } = await peersWith(t, 2, (self, all, i) => new Peer({ self, peers: all, vnodes: vnodes[i] }))
  const [a, b] = urls as [string, string]
  const [ringA, ringB] = vnodes.map((v) => new Ring(urls, v)) as [Ring, Ring]
  const key = findKey((k) => ringA.owners(k, 1)[0] === b && ringB.owners(k, 1)[0] === a, numberedKeys('contested-'))
  const origin = new Origin()
  const [ga, gb] = peers.map((p, i) => p.group('g', { maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor(`p${i}`) as Load }))
  const result = await settledWithin(Promise.all([ga!.get(key), gb!.get(key)]), 10_000)
  t.not(result, 'hung', 'both gets settled')
  t.same(result === 'hung' ? result : result.map(String), [`value of ${key}`, `value of ${key}`], 'both resolved with the value')
  t.same([ga!.stats().serverRequests, gb!.stats().serverRequests], [1, 1], 'each served the other once')
  t.same(origin.calls.map((c) => c.by).sort(), ['p0', 'p1'], 'each receiver loaded the key itself instead of sending it back')
  t.same([ga!.stats().peerErrors, gb!.stats().peerErrors], [0, 0])
})

t.test('a peer request is never forwarded along a chain either', async (t) => {
  // A knows {A, B}: B owns the key. B also knows C (nobody listens there), which owns it on B's ring.
  const c = 'http://127.0.0.1:3'
  const { peers, urls } = await peersWith(t, 2, (self, all, i) => new Peer({ self, peers: i === 0 ? all : [...all, c] }))
  const ringA = new Ring(urls)
  const ringB = new Ring([...urls, c])
  const key = findKey((k) => ringA.owners(k, 1)[0] === urls[1] && ringB.owners(k, 1)[0] === c, numberedKeys('chain-'))
  const origin = new Origin()
  const [ga, gb] = peers.map((p, i) => p.group('g', { maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor(`p${i}`) as Load }))
  t.equal(String(await settledWithin(ga!.get(key), 10_000)), `value of ${key}`)
  t.same(
    origin.calls.map((c) => c.by),
    ['p1'],
    'B loaded it',
  )
  t.equal(gb!.stats().peerErrors, 0, 'B never tried C')
  t.equal(ga!.stats().peerLoads, 1)
})

t.test('a batch mixing small and large values (and a load) brings every value back whole', async (t) => {
  const tp = await startPeers(t, 2)
  const sizes = [3, 5000, 100_000, 10, 70_000, 4096, 4095, 1]
  const valueFor = (key: string) => {
    const size = sizes[Number(key.split(':')[1]) % sizes.length]!
    const b = Buffer.alloc(size)
    for (let i = 0; i < size; i++) b[i] = (i * 31 + key.length) & 0xff
    return b
  }
  const groups = tp.group('mix', () => ({ maxBytes: 8 << 20, replicas: 1, hotCacheRatio: 0, load: async (key: string) => valueFor(key) }))
  // Keys owned by peer 1, asked from peer 0: every value crosses the wire in a batch.
  const keys: string[] = []
  for (let i = 0; keys.length < 24; i++) if (tp.ownerIndex(`k:${i}`) === 1) keys.push(`k:${i}`)
  await Promise.all(keys.slice(0, 12).map((k) => groups[1]!.get(k))) // half cached at the owner, half loaded in the batch
  const got = await Promise.all(keys.map((k) => groups[0]!.get(k)))
  const sha = (b: Uint8Array) => createHash('sha1').update(b).digest('hex')
  t.same(
    got.map(sha),
    keys.map((k) => sha(valueFor(k))),
    'every value arrives whole, whatever its size',
  )
  t.equal(groups[0]!.stats().peerLoads, keys.length, 'all of them fetched from the owner')
})
