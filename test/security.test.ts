// The attacks of issue 11, each tried against real peers on loopback the way an attacker on the
// network would (plain HTTP requests, no secret), and what each does now: poisoning, wiping, a
// spoofed leave and a frozen version clock are refused and change nothing; a peer with the wrong
// secret is routed around and counted; answers are bounded; wrong PUTs are told so.
import t from 'tap'
import { AUTH_HEADER, Auth } from '../lib/auth.js'
import { encodeBatch } from '../lib/frames.js'
import { HEADER, PROTOCOL_VERSION, keyPath } from '../lib/protocol.js'
import { request } from 'undici'
import { Ring } from '../lib/ring.js'
import { GROUP, eventually, loaded, startGroupCluster, total } from './helpers/inproc.js'
import { findKey } from './helpers/peers.js'
import { FrameParser } from '../lib/frames.js'

const SECRET = 'security-test-secret-of-32-bytes'
const BASE = '/_peercache/'
const auth = { auth: { secret: SECRET } }

/** A request as an attacker sends it: plain HTTP, optionally signed with `by`. */
async function send(
  url: string,
  method: string,
  path: string,
  options: { body?: Buffer; headers?: Record<string, string>; by?: Auth } = {},
) {
  const headers: Record<string, string> = { [HEADER.protocol]: String(PROTOCOL_VERSION), ...options.headers }
  if (options.by) Object.assign(headers, options.by.sign(method, path, headers[HEADER.from] ?? '', options.body))
  const res = await request(`${url}${path}`, { method: method as 'GET', headers, body: options.body })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body }
}

t.test('poisoning: an unsigned PUT is refused (401) and the value stays the origin’s, on every peer', async (t) => {
  const c = await startGroupCluster(t, 3, {}, auth)
  const key = 'user:42'
  // Before its first load, and after.
  for (const when of ['before the first load', 'after it']) {
    for (const url of c.urls) {
      const a = await send(url, 'PUT', keyPath(BASE, GROUP, key), { body: Buffer.from('{"admin":true}') })
      t.equal(a.status, 401, `${when}: ${url} refused the PUT`)
      t.equal(a.headers[HEADER.error], 'unauthorized')
    }
    for (const g of c.groups) t.equal(await g.get(key), loaded(key, 1), `${when}: the origin's value`)
  }
  t.equal(c.origin.count(key), 1)
})

t.test('wiping: unsigned DELETEs are refused and drop nothing (no reload follows)', async (t) => {
  const c = await startGroupCluster(t, 3, {}, auth)
  const keys = Array.from({ length: 20 }, (_, i) => `wipe${i}`)
  for (const key of keys) await c.groups[0]!.get(key)
  const loads = c.origin.count()
  for (const key of keys) for (const url of c.urls) t.equal((await send(url, 'DELETE', keyPath(BASE, GROUP, key))).status, 401)
  for (const key of keys) for (const g of c.groups) t.equal(await g.get(key), loaded(key, 1))
  t.equal(c.origin.count(), loads, 'no origin load after the attempt')
})

t.test('spoofed leave: an unsigned leave naming a peer is refused; the peer stays up and keeps its keys', async (t) => {
  const c = await startGroupCluster(t, 3, {}, auth)
  for (const url of c.urls) {
    for (const victim of c.urls.filter((u) => u !== url)) {
      const a = await send(url, 'POST', `${BASE}leave`, { headers: { [HEADER.from]: victim } })
      t.equal(a.status, 401)
    }
  }
  for (const p of c.peers)
    t.notOk(
      p.health().some((h) => h.state !== 'up'),
      `${p.self} sees every peer up`,
    )
  const keys = Array.from({ length: 30 }, (_, i) => `left${i}`)
  for (const key of keys) await c.groups[0]!.get(key)
  t.equal(c.origin.count(), keys.length, 'one origin load per key, not one per peer')
})

t.test('the clock freeze: a version of 1.7976931348623157e308 is refused (400) and later writes still win', async (t) => {
  // Without auth: the version check stands on its own (a buggy or compromised peer is refused too).
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1, 'freeze')
  await c.groups[0]!.get(key)
  const huge = '1.7976931348623157e308'
  for (const url of c.urls) {
    const put = await send(url, 'PUT', keyPath(BASE, GROUP, key), {
      body: Buffer.from('x'),
      headers: { [HEADER.replica]: '1', [HEADER.version]: huge },
    })
    t.equal(put.status, 400, `${url}: PUT refused`)
    const del = await send(url, 'DELETE', keyPath(BASE, GROUP, key), { headers: { [HEADER.version]: huge } })
    t.equal(del.status, 400, `${url}: DELETE refused`)
    const ahead = String((Date.now() + 3_600_000) * 1000)
    t.equal(
      (await send(url, 'DELETE', keyPath(BASE, GROUP, key), { headers: { [HEADER.version]: ahead } })).status,
      400,
      'an hour ahead: refused',
    )
  }
  await c.groups[2]!.remove(key)
  await c.groups[2]!.set(key, 'C')
  for (const g of c.groups) t.equal(await g.get(key), 'C', 'the set after the remove is what every peer returns')
})

t.test('a peer with the wrong secret: its requests are refused, it loads locally, counts auth errors, and health says why', async (t) => {
  const c = await startGroupCluster(t, 2, { replicas: 1 }, auth)
  const stranger = new Auth({ secret: 'a-different-secret-of-32-bytes!!' })
  // A third process that knows the peers' URLs but not their secret.
  const { Peer } = await import('../lib/index.js')
  const port = (await import('./helpers/net.js')).freePort
  const self = `http://127.0.0.1:${await port()}`
  const intruder = new Peer({ self, peers: [...c.urls, self], auth: { secret: 'a-different-secret-of-32-bytes!!' } })
  t.teardown(() => intruder.close())
  let loads = 0
  const g = intruder.group(GROUP, {
    maxBytes: 1 << 20,
    replicas: 1,
    codec: 'string',
    load: (key) => {
      loads++
      return `intruder's ${key}`
    },
  })
  // A key the intruder's ring (its own URL included) gives to the first peer.
  const ring = new Ring([...c.urls, self])
  const key = findKey((k) => ring.owners(k, 1)[0] === c.urls[0])
  t.equal(await g.get(key), `intruder's ${key}`, 'the intruder gets no value from the peers: it loads itself')
  t.equal(loads, 1)
  t.ok(g.stats().authErrors >= 1, 'an auth error was counted')
  t.equal(c.origin.count(key), 0, 'the owner loaded nothing for it')
  await eventually(() => intruder.health().some((h) => h.peer === c.urls[0] && h.state !== 'up'), 'the owner is routed around')
  const seen = intruder.health().find((h) => h.peer === c.urls[0])!
  t.match(seen.lastError, /401/, `health shows why: ${seen.lastError}`)
  t.equal((await send(c.urls[0]!, 'GET', keyPath(BASE, GROUP, key), { by: stranger })).status, 401)
})

t.test('amplification: a batch of 1,024 fresh keys starts at most maxPeerLoads + maxQueuedPeerLoads loads', async (t) => {
  const c = await startGroupCluster(t, 1, { maxPeerLoads: 8, maxQueuedPeerLoads: 24 }, auth)
  c.origin.hold()
  const body = encodeBatch(Array.from({ length: 1024 }, (_, i) => ({ group: GROUP, key: `fresh${i}` })))
  const answer = send(c.urls[0]!, 'POST', `${BASE}batch`, { body, by: new Auth({ secret: SECRET }) })
  await c.origin.started(8)
  c.origin.release()
  const a = await answer
  const statuses = new Map<string, number>()
  for (const f of new FrameParser().push(a.body)) statuses.set(f.status, (statuses.get(f.status) ?? 0) + 1)
  t.equal(statuses.get('ok'), 32, '32 keys loaded')
  t.equal(statuses.get('overloaded'), 1024 - 32, 'the rest refused at once')
  t.equal(c.origin.count(), 32, '32 origin loads, not 1,024')
})

t.test('a key named 1,024 times in one batch is answered once; the answer stays within the byte budget', async (t) => {
  const c = await startGroupCluster(t, 1, { maxBytes: 64 << 20 }, { ...auth, maxBatchBytes: 4 << 20 })
  const big = Array.from({ length: 8 }, (_, i) => `big${i}`)
  c.origin.value = () => 'v'.repeat(1 << 20)
  for (const key of big) await c.groups[0]!.get(key)
  const by = new Auth({ secret: SECRET })
  const repeated = await send(c.urls[0]!, 'POST', `${BASE}batch`, {
    body: encodeBatch(Array.from({ length: 1024 }, () => ({ group: GROUP, key: 'big0' }))),
    by,
  })
  const frames = new FrameParser().push(repeated.body)
  t.equal(frames.filter((f) => f.status === 'ok').length, 1, 'one value')
  t.equal(frames.filter((f) => f.status === 'bad-request').length, 1023, 'the repeats are refused')
  t.ok(repeated.body.length < 1.1 * (1 << 20), `${repeated.body.length} bytes, not 1,024 MiB`)
  const many = await send(c.urls[0]!, 'POST', `${BASE}batch`, { body: encodeBatch(big.map((key) => ({ group: GROUP, key }))), by })
  const got = new FrameParser().push(many.body)
  t.equal(got.filter((f) => f.status === 'ok').length, 4, '4 values of 1 MiB fit the 4 MiB budget')
  t.equal(got.filter((f) => f.status === 'retry').length, 4, 'the others are to be asked for again')
  // A peer's own client asks again: every value arrives.
  const other = await startGroupCluster(t, 2, { maxBytes: 64 << 20, replicas: 1 }, { ...auth, maxBatchBytes: 2 << 20 })
  other.origin.value = () => 'w'.repeat(1 << 20)
  const keys = Array.from({ length: 6 }, (_, i) => other.keyOf(0, 1, `retry${i}-`))
  for (const key of keys) await other.groups[0]!.get(key)
  const values = await Promise.all(keys.map((key) => other.groups[1]!.get(key)))
  t.ok(
    values.every((v) => v.length === 1 << 20),
    'all six 1 MiB values arrive through a 2 MiB budget',
  )
  t.equal(other.origin.count(), keys.length, 'without a second load')
  t.equal(total(other.groups, 'peerErrors'), 0)
})

t.test('wrong answers: a key over 4,096 bytes is 400, a PUT to a peer that holds no copy is 421', async (t) => {
  const c = await startGroupCluster(t, 3, { replicas: 1 }, auth)
  const by = new Auth({ secret: SECRET })
  const long = 'k'.repeat(4097)
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const a = await send(c.urls[0]!, method, keyPath(BASE, GROUP, long), { body: method === 'PUT' ? Buffer.from('v') : undefined, by })
    t.equal(a.status, 400, `${method} of a long key: 400`)
  }
  const key = c.keyOf(0, 1, 'mis')
  const elsewhere = c.roles(key).others[0]!
  const a = await send(c.urls[elsewhere]!, 'PUT', keyPath(BASE, GROUP, key), { body: Buffer.alloc(1000, 'x'), by })
  t.equal(a.status, 421, 'a PUT to a peer that is neither owner nor replica')
  t.equal(a.headers[HEADER.error], 'misdirected')
  t.equal(c.groups[elsewhere]!.stats().main.items + c.groups[elsewhere]!.stats().hot.items, 0, 'nothing kept there')
  t.equal(AUTH_HEADER.signature, 'x-peercache-auth')
})
