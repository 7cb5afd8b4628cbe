// Mirrors lib/batch-client.ts: the batched fetch against a real HTTP server that answers by hand: gets made together share a request, maxBatchKeys splits, gets made while a batch is in flight share the next one, frames settle their own keys in any order, `retry` asks again, and each failure (an error status, a short answer, no headers, a silent answer, abortPeer, a refused connection) rejects with PeerUnavailableError.
import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Pool } from 'undici'
import { BatchClient, type BatchClientOptions, heartbeatFor } from '../lib/batch-client.js'
import { LoadError, LoadTimeoutError, PeerUnavailableError } from '../lib/errors.js'
import { type BatchItem, decodeBatch, encodeFrame, HEARTBEAT_INDEX } from '../lib/frames.js'
import type { Queued } from '../lib/pending-get.js'
import { HEADER, PROTOCOL_VERSION, type WireEntry } from '../lib/protocol.js'
import { fail } from '../lib/refusals.js'
import { settledWithin } from './helpers/bound.js'
import { httpServer } from './helpers/http-server.js'
import { freePort, hungPeer } from './helpers/net.js'
import type { TapTest } from './helpers/tap.js'

const BOUND_MS = 10_000
const SELF = 'http://127.0.0.1:1'

interface Asked {
  items: BatchItem[]
  headers: IncomingMessage['headers']
  url: string
}
type Answerer = (items: BatchItem[], res: ServerResponse, n: number) => void

/** A server taking batches (`answer` writes each answer); the batches it was sent, in order. */
async function batchServer(t: TapTest, answer: Answerer) {
  const asked: Asked[] = []
  const waiters: (() => void)[] = []
  const { url } = await httpServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.once('end', () => {
      const items = decodeBatch(Buffer.concat(chunks))
      asked.push({ items, headers: req.headers, url: req.url ?? '' })
      for (const w of waiters.splice(0)) w()
      answer(items, res, asked.length - 1)
    })
  })
  /** Resolves once the server has taken its first batch. */
  const first = (): Promise<void> => (asked.length > 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve)))
  return { url, asked, first }
}

/** A BatchClient over undici pools, one per peer URL, closed at teardown. */
function batchClient(t: TapTest, options: Partial<BatchClientOptions> = {}) {
  const pools = new Map<string, Pool>()
  t.teardown(() => Promise.all([...pools.values()].map((p) => p.destroy())))
  return new BatchClient(
    {
      self: SELF,
      basePath: '/_peercache/',
      peerTimeoutMs: 5000,
      fetchTimeoutMs: 10_000,
      maxBatchKeys: 64,
      maxVersionAheadMs: 60_000,
      ...options,
    },
    {
      pool: (peer) => {
        let p = pools.get(peer)
        if (p === undefined) pools.set(peer, (p = new Pool(peer)))
        return p
      },
      signed: (base) => base,
    },
  )
}

/** A get for `key` and its outcome. */
function get(key: string, group = 'g'): { q: Queued; outcome: Promise<WireEntry | undefined> } {
  let q: Queued | undefined
  const outcome = new Promise<WireEntry | undefined>((resolve, reject) => {
    q = { group, key, peek: false, settled: false, trace: undefined, retries: 0, resolve, reject }
  })
  return { q: q!, outcome }
}

/** Each key's value `v:<key>`, in one answer, in reverse order (the order is the owner's). */
const answerAll: Answerer = (items, res) => {
  res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
  const frames = items.map((it, i) => encodeFrame(i, 'ok', Buffer.from(`v:${it.key}`), 0, 1)).reverse()
  res.end(Buffer.concat(frames.flat()))
}

async function text(outcome: Promise<WireEntry | undefined>): Promise<string> {
  const e = await settledWithin(outcome, BOUND_MS)
  return e === 'hung' ? 'hung' : (e?.bytes.toString() ?? 'undefined')
}

async function rejection(outcome: Promise<unknown>): Promise<unknown> {
  return settledWithin(
    outcome.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    BOUND_MS,
  )
}

t.test('heartbeatFor: a quarter of peerTimeoutMs, at least 1 ms', async (t) => {
  t.same([heartbeatFor(2000), heartbeatFor(1001), heartbeatFor(3), heartbeatFor(0)], [500, 250, 1, 1])
})

t.test('gets made together share one request, each settled by its own frame whatever the order', async (t) => {
  const { url, asked } = await batchServer(t, answerAll)
  const client = batchClient(t)
  const gets = ['a', 'b', 'c'].map((k) => get(k))
  for (const g of gets) client.queue(url, g.q)
  t.same(await Promise.all(gets.map((g) => text(g.outcome))), ['v:a', 'v:b', 'v:c'])
  t.equal(asked.length, 1, 'one request')
  t.same(
    asked[0]?.items.map((i) => i.key),
    ['a', 'b', 'c'],
  )
  t.equal(asked[0]?.url, '/_peercache/batch')
  t.match(asked[0]?.headers, {
    [HEADER.protocol]: String(PROTOCOL_VERSION),
    [HEADER.from]: SELF,
    'content-type': 'application/x-peercache-batch',
    [HEADER.heartbeat]: String(heartbeatFor(5000)),
  })
  t.equal(client.running(url), 0, 'nothing under way once answered')
})

t.test('maxBatchKeys: a full queue goes at once, the rest in the next request', async (t) => {
  const { url, asked } = await batchServer(t, answerAll)
  const client = batchClient(t, { maxBatchKeys: 2 })
  const gets = ['a', 'b', 'c', 'd', 'e'].map((k) => get(k))
  for (const g of gets) client.queue(url, g.q)
  t.same(await Promise.all(gets.map((g) => text(g.outcome))), ['v:a', 'v:b', 'v:c', 'v:d', 'v:e'])
  t.same(
    asked.map((a) => a.items.map((i) => i.key)),
    [['a', 'b'], ['c', 'd'], ['e']],
  )
})

t.test('while a batch is in flight, new gets gather and share the next request', async (t) => {
  const held: ServerResponse[] = []
  const {
    url,
    asked,
    first: taken,
  } = await batchServer(t, (items, res, n) => {
    if (n === 0) {
      res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
      res.flushHeaders()
      held.push(res) // answered at the end of the test
    } else answerAll(items, res, n)
  })
  const client = batchClient(t)
  const first = get('first')
  client.queue(url, first.q)
  t.not(await settledWithin(taken(), BOUND_MS), 'hung', 'the first batch is at the server: one is in flight')
  t.equal(client.running(url), 1)
  const later = ['x', 'y', 'z'].map((k) => get(k))
  for (const g of later) client.queue(url, g.q)
  t.same(await Promise.all(later.map((g) => text(g.outcome))), ['v:x', 'v:y', 'v:z'])
  t.same(
    asked.map((a) => a.items.map((i) => i.key)),
    [['first'], ['x', 'y', 'z']],
    'the three gathered into one request',
  )
  held[0]?.end(Buffer.concat(encodeFrame(0, 'ok', Buffer.from('late'))))
  t.equal(await text(first.outcome), 'late')
})

t.test('a key answered `retry` (the owner’s budget was spent) is asked for again in a later batch', async (t) => {
  const { url, asked } = await batchServer(t, (items, res, n) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    const frames = items.map((it, i) =>
      n === 0 && it.key === 'b' ? encodeFrame(i, 'retry', Buffer.alloc(0)) : encodeFrame(i, 'ok', Buffer.from(`v:${it.key}`)),
    )
    res.end(Buffer.concat(frames.flat()))
  })
  const client = batchClient(t)
  const gets = ['a', 'b'].map((k) => get(k))
  for (const g of gets) client.queue(url, g.q)
  t.same(await Promise.all(gets.map((g) => text(g.outcome))), ['v:a', 'v:b'])
  t.same(
    asked.map((a) => a.items.map((i) => i.key)),
    [['a', 'b'], ['b']],
  )
})

t.test('frames of the origin’s errors settle only their own key; heartbeats and unknown indexes are skipped', async (t) => {
  const { url } = await batchServer(t, (_items, res) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    const frames = [
      encodeFrame(HEARTBEAT_INDEX, 'heartbeat', Buffer.alloc(0)),
      encodeFrame(99, 'ok', Buffer.from('no such index')),
      encodeFrame(1, 'load', Buffer.from('db down')),
      encodeFrame(0, 'ok', Buffer.from('fine')),
      encodeFrame(0, 'ok', Buffer.from('twice: ignored')),
    ]
    res.end(Buffer.concat(frames.flat()))
  })
  const client = batchClient(t)
  const ok = get('ok')
  const bad = get('bad')
  client.queue(url, ok.q)
  client.queue(url, bad.q)
  t.equal(await text(ok.outcome), 'fine')
  const e = await rejection(bad.outcome)
  t.type(e, LoadError)
  t.match(e, { group: 'g', key: 'bad', peer: url, originMessage: 'db down' })
})

t.test('an error status: every get of the batch rejects with PeerUnavailableError and the peer’s reason', async (t) => {
  const { url } = await batchServer(t, (_items, res) => fail(res, 'unknown-group', 'no group "g" on this peer'))
  const client = batchClient(t)
  const gets = ['a', 'b'].map((k) => get(k))
  for (const g of gets) client.queue(url, g.q)
  for (const g of gets) {
    const e = await rejection(g.outcome)
    t.type(e, PeerUnavailableError)
    t.match(e, { peer: url, reason: 'unknown-group' })
  }
  const origin = await batchServer(t, (_items, res) => fail(res, 'load', 'db down'))
  const g = get('c')
  client.queue(origin.url, g.q)
  t.type(await rejection(g.outcome), PeerUnavailableError, 'even a load error on the whole batch: the peer, not the key')
})

t.test('an answer that ends before every key was answered: the rest reject with PeerUnavailableError', async (t) => {
  const { url } = await batchServer(t, (_items, res) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    res.end(Buffer.concat(encodeFrame(0, 'ok', Buffer.from('only the first'))))
  })
  const client = batchClient(t)
  const a = get('a')
  const b = get('b')
  client.queue(url, a.q)
  client.queue(url, b.q)
  t.equal(await text(a.outcome), 'only the first')
  t.match(await rejection(b.outcome), { name: 'PeerUnavailableError', message: /ended before every key was answered/ })
})

t.test('no headers within peerTimeoutMs (a hung peer): PeerUnavailableError', async (t) => {
  const hung = await hungPeer(t)
  const client = batchClient(t, { peerTimeoutMs: 200 })
  const g = get('k')
  client.queue(hung.url, g.q)
  const e = await rejection(g.outcome)
  t.type(e, PeerUnavailableError)
  t.match(e, { peer: hung.url, reason: undefined, message: /no answer within 200 ms/ })
  t.equal(client.running(hung.url), 0)
})

t.test('a peer alive (heartbeats) but its origin slow past fetchTimeoutMs: LoadTimeoutError', async (t) => {
  const beats: NodeJS.Timeout[] = []
  t.teardown(() => beats.forEach(clearInterval))
  const { url } = await batchServer(t, (_items, res) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    res.flushHeaders()
    const beat = setInterval(() => res.write(Buffer.concat(encodeFrame(HEARTBEAT_INDEX, 'heartbeat', Buffer.alloc(0)))), 20)
    beats.push(beat)
    res.once('close', () => clearInterval(beat))
  })
  const client = batchClient(t, { peerTimeoutMs: 5000, fetchTimeoutMs: 300 })
  const g = get('slow')
  client.queue(url, g.q)
  const e = await rejection(g.outcome)
  t.type(e, LoadTimeoutError)
  t.match(e, { key: 'slow', peer: url, originMessage: 'no value within fetchTimeoutMs (300 ms)' })
})

t.test('an answer silent past peerTimeoutMs after its headers: onStall is asked, and abortPeer fails the batch', async (t) => {
  const { url } = await batchServer(t, (_items, res) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    res.flushHeaders() // then nothing: a peer that hung mid-answer
  })
  const stalled: string[] = []
  const client: BatchClient = batchClient(t, {
    peerTimeoutMs: 200,
    fetchTimeoutMs: 60_000,
    onStall: (peer) => {
      stalled.push(peer)
      client.abortPeer(peer, 'health says down')
    },
  })
  const g = get('k')
  client.queue(url, g.q)
  const e = await rejection(g.outcome)
  t.same(stalled, [url], 'onStall was asked once, about that peer')
  t.type(e, PeerUnavailableError)
  t.match(e, { peer: url, message: /health says down/ })
})

t.test('abortPeer: the batches under way to that peer only', async (t) => {
  const held: ServerResponse[] = []
  const one = await batchServer(t, (_items, res) => {
    res.writeHead(200, { 'content-type': 'application/x-peercache-frames' })
    res.flushHeaders()
    held.push(res)
  })
  const two = await batchServer(t, answerAll)
  const client = batchClient(t)
  const a = get('a')
  client.queue(one.url, a.q)
  t.not(await settledWithin(one.first(), BOUND_MS), 'hung', 'the batch is under way')
  client.abortPeer(two.url, 'not this one')
  client.abortPeer(one.url, 'down')
  t.match(await rejection(a.outcome), { name: 'PeerUnavailableError', peer: one.url, message: /down/ })
  const b = get('b')
  client.queue(two.url, b.q)
  t.equal(await text(b.outcome), 'v:b', 'the other peer is asked as before')
})

t.test('a refused connection: PeerUnavailableError with no reason (the peer may be down)', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}`
  const client = batchClient(t)
  const g = get('k')
  client.queue(url, g.q)
  const e = await rejection(g.outcome)
  t.type(e, PeerUnavailableError)
  t.match(e, { peer: url, reason: undefined, message: /ECONNREFUSED/ })
})
