// The asker's side of the peer stream: gets on one upgraded connection, answered in any order;
// batches where the upgrade is refused; a hung owner (SIGSTOP) or a closed client ends the stream
// and fails only its keys, with PeerUnavailableError, within a bound.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { PeerUnavailableError } from '../lib/index.js'
import { settledWithin } from './helpers/bound.js'
import { startScript } from './helpers/script.js'
import { batches, client, servePeer } from './helpers/streams.js'
import { freePort } from './helpers/net.js'

const OWNER = fileURLToPath(new URL('./fixtures/stream-owner.mjs', import.meta.url))
/** "It did not hang", never a measure of speed. */
const BOUND_MS = 20_000

t.test('many concurrent gets on one stream, answered out of order, each to its caller', async (t) => {
  // The first key's load waits until every other key is answered: its answer comes back last.
  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const owner = await servePeer(t, {}, { hold: (key) => (key === 'k0' ? gate : undefined) })
  const c = client(t)
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
  const order: string[] = []
  const asked = keys.map((k) =>
    c.get(owner.url, 'g', k).then((e) => {
      order.push(k)
      return e.bytes.toString()
    }),
  )
  await Promise.all(asked.slice(1))
  t.equal(order.length, keys.length - 1, 'the others were answered while the first waits')
  open()
  const got = await Promise.all(asked)
  t.same(
    got,
    keys.map((k) => `v:${k}`),
    'every caller got its own key’s value',
  )
  t.equal(order.at(-1), 'k0', 'the first asked came back last')
  t.equal(owner.streams.length, 1, 'all on one stream')
  t.equal(batches(owner.requests), 0, 'no batch request')
  // A second round reuses the stream.
  t.same(
    (await Promise.all(keys.map((k) => c.get(owner.url, 'g', k)))).map((e) => e.bytes.toString()),
    got,
    'again, from the cache',
  )
  t.equal(owner.streams.length, 1, 'on the same stream')
})

t.test('values of 1 MiB cross the stream whole', async (t) => {
  const owner = await servePeer(t, {}, { valueBytes: 1 << 20 })
  const c = client(t)
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
  const got = await Promise.all(keys.map((k) => c.get(owner.url, 'g', k)))
  for (const [i, e] of got.entries())
    t.ok(e.bytes.equals(Buffer.alloc(1 << 20, keys[i]!.charCodeAt(0))), `${keys[i]}: 1 MiB, its own bytes`)
  t.equal(owner.streams.length, 1, 'on the stream')
  t.equal(batches(owner.requests), 0, 'no batch request')
})

t.test('a handler mounted without the upgrade listener: refused, and the gets go by batch', async (t) => {
  const owner = await servePeer(t, {}, { attach: false })
  const c = client(t)
  const got = await Promise.all(['x', 'y', 'z'].map((k) => c.get(owner.url, 'g', k)))
  t.same(
    got.map((e) => e.bytes.toString()),
    ['v:x', 'v:y', 'v:z'],
    'answered',
  )
  t.ok(owner.requests.includes('/_peercache/stream'), 'Node handed the upgrade request to the request listener')
  t.ok(batches(owner.requests) >= 1, 'the gets went by batch')
  const streamAsks = owner.requests.filter((r) => r.endsWith('/stream')).length
  t.equal((await c.get(owner.url, 'g', 'w')).bytes.toString(), 'v:w', 'a later get too')
  t.equal(owner.requests.filter((r) => r.endsWith('/stream')).length, streamAsks, 'without asking for the upgrade again so soon')
})

t.test('an older peer (404 to the upgrade): the gets go by batch', async (t) => {
  const owner = await servePeer(
    t,
    {},
    {
      attach: false,
      intercept: (req, res) => {
        if (!req.url?.endsWith('/stream')) return false
        res.statusCode = 404
        res.end('no such path')
        return true
      },
    },
  )
  const c = client(t)
  t.equal((await c.get(owner.url, 'g', 'old')).bytes.toString(), 'v:old', 'answered')
  t.ok(batches(owner.requests) >= 1, 'by batch')
})

t.test('an idle stream is ended by the asker after keepAliveTimeoutMs; the next get opens another', async (t) => {
  const owner = await servePeer(t, {}, {})
  const c = client(t, { keepAliveTimeoutMs: 200 })
  await c.get(owner.url, 'g', 'a')
  const ended = new Promise((resolve) => owner.streams[0]!.once('end', resolve))
  t.not(await settledWithin(ended, BOUND_MS), 'hung', 'the owner saw the asker end it')
  t.equal((await c.get(owner.url, 'g', 'b')).bytes.toString(), 'v:b', 'a later get is answered')
  t.equal(owner.streams.length, 2, 'on a new stream')
})

t.test('a peer removed from the membership has its stream closed', async (t) => {
  const owner = await servePeer(t, {}, {})
  const c = client(t)
  await c.get(owner.url, 'g', 'a')
  t.equal(owner.streams.length, 1, 'a stream is open')
  const closed = new Promise((resolve) => owner.streams[0]!.once('close', resolve))
  c.retain([])
  t.not(await settledWithin(closed, BOUND_MS), 'hung', 'the owner sees it closed')
})

t.test('closing the client ends its streams; nothing is sent after', async (t) => {
  const owner = await servePeer(t, {}, {})
  const c = client(t)
  await c.get(owner.url, 'g', 'a')
  const closed = new Promise((resolve) => owner.streams[0]!.once('close', resolve))
  await c.close()
  t.not(await settledWithin(closed, BOUND_MS), 'hung', 'the owner sees the stream closed')
  await t.rejects(c.get(owner.url, 'g', 'b'), PeerUnavailableError, 'a later get fails at once')
  t.equal(owner.streams.length, 1, 'and opened no stream')
})

t.test('a SIGSTOPped owner: the silent stream calls onStall at once, and its keys fail with PeerUnavailableError', async (t) => {
  const port = await freePort()
  const owner = startScript(t, OWNER, { env: { PORT: String(port) } })
  await owner.next((line) => line === 'listening')
  const url = `http://127.0.0.1:${port}`
  const stalls: string[] = []
  // onStall asks health to probe, and a down peer's stream is ended (abortPeer); a bare client has no
  // health: its keys fail at fetchTimeoutMs, the owner being silent.
  const c = client(t, { peerTimeoutMs: 300, fetchTimeoutMs: 1500, onStall: (p) => stalls.push(p) })
  t.equal((await c.get(url, 'g', 'before')).bytes.toString(), 'v:before', 'answered while it runs')
  owner.child.kill('SIGSTOP')
  t.teardown(() => owner.child.kill('SIGCONT'))
  const waiting = ['s1', 's2', 's3'].map((k) =>
    c.get(url, 'g', k).then(
      () => 'answered',
      (err: unknown) => err,
    ),
  )
  const results = await settledWithin(Promise.all(waiting), BOUND_MS)
  t.not(results, 'hung', 'the gets did not hang')
  if (results !== 'hung') for (const r of results) t.type(r, PeerUnavailableError, 'failed with PeerUnavailableError')
  t.same(stalls, [url], 'onStall was told about the owner')
  owner.child.kill('SIGCONT')
  t.equal((await c.get(url, 'g', 'after')).bytes.toString(), 'v:after', 'a new stream once it runs again')
})
