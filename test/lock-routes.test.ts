// Mirrors lib/lock-routes.ts: answerLock behind a real node:http server, asked with undici: acquire's long-poll (headers, heartbeat, grant, hang-up), release, record, misdirection, and every bad body.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { digestOf } from '../lib/auth.js'
import { answerLock, type LockRoutes } from '../lib/lock-routes.js'
import { LockTable, MAX_LOCK_TTL_MS } from '../lib/locks.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import type { TapTest } from './helpers/tap.js'

const SELF = 'http://127.0.0.1:1'
const OTHER = 'http://127.0.0.1:2'

/** answerLock on loopback: POST /{op}; a test may pass the digest the body must match in x-test-digest. */
async function lockServer(t: TapTest, maxWaiters = 10) {
  const checked: string[] = []
  const owner = { of: SELF }
  const table = new LockTable({ maxWaiters, replicator: { isOwner: () => owner.of === SELF, record: async () => undefined } })
  const routes: LockRoutes = { table, ownerOf: () => owner.of, self: SELF, check: (peer) => checked.push(peer), maxTokenAheadMs: 60_000 }
  const server = http.createServer((req, res) => {
    const digest = req.headers['x-test-digest']
    void answerLock((req.url ?? '').slice(1), req, res, routes, typeof digest === 'string' ? digest : undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    table.close()
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  /** POSTs `body` (JSON unless a string) to /{op}: status, headers and the body's text. */
  const post = async (op: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await request(`${url}/${op}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers })
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
  }
  return { url, table, owner, checked, post }
}

const json = (text: string) => JSON.parse(text) as Record<string, unknown>

t.test('acquire, release, release again: one JSON line each, with the protocol header', async (t) => {
  const s = await lockServer(t)
  const got = await s.post('acquire', { name: 'rebuild', id: 'a', ttlMs: 60_000 })
  t.equal(got.status, 200)
  t.equal(got.headers['content-type'], 'application/x-ndjson')
  t.equal(got.headers[HEADER.protocol], String(PROTOCOL_VERSION))
  t.ok(got.text.endsWith('\n'), 'a line')
  const grant = json(got.text)
  t.ok(Number.isSafeInteger(grant.token) && (grant.token as number) > 0, 'a token')
  t.ok((grant.ttlMs as number) > 0 && (grant.ttlMs as number) <= 60_000, 'the time left')
  t.same(
    json((await s.post('acquire', { name: 'rebuild', id: 'a', ttlMs: 60_000 })).text).token,
    grant.token,
    'asked again: the same lease',
  )
  t.same(
    json((await s.post('release', { name: 'rebuild', id: 'b', token: grant.token })).text),
    { released: false, reason: 'expired' },
    'not the holder',
  )
  t.same(json((await s.post('release', { name: 'rebuild', id: 'a', token: grant.token })).text), { released: true })
  t.same(
    json((await s.post('release', { name: 'rebuild', id: 'a' })).text),
    { released: false, reason: 'unknown' },
    'no token, nothing held',
  )
  t.equal(s.table.stats().held, 0)
})

t.test('a waiting acquire: headers at once, blank heartbeat lines, then the grant when the lease is released', async (t) => {
  const s = await lockServer(t)
  const first = json((await s.post('acquire', { name: 'n', id: 'a', ttlMs: 60_000 })).text)
  const res = await request(`${s.url}/acquire`, { method: 'POST', body: JSON.stringify({ name: 'n', id: 'b', ttlMs: 60_000 }) })
  t.equal(res.statusCode, 200, 'the headers came before the grant')
  t.equal(s.table.stats().waiting, 1)
  let text = ''
  for await (const chunk of res.body) {
    text += (chunk as Buffer).toString('utf8')
    if (text === '\n') {
      // A heartbeat came: the wait is alive. Now let it through.
      t.same(json((await s.post('release', { name: 'n', id: 'a', token: first.token })).text), { released: true })
    }
  }
  const lines = text.split('\n')
  t.equal(lines[0], '', 'a blank heartbeat line first')
  const grant = json(lines.filter((l) => l !== '').at(-1)!)
  t.ok((grant.token as number) > (first.token as number), 'the next lease, with a larger token')
  t.equal(text.at(-1), '\n')
})

t.test('a caller hanging up while waiting leaves the queue and is never granted', async (t) => {
  const s = await lockServer(t)
  const first = json((await s.post('acquire', { name: 'n', id: 'a', ttlMs: 60_000 })).text)
  const ac = new AbortController()
  const res = await request(`${s.url}/acquire`, {
    method: 'POST',
    body: JSON.stringify({ name: 'n', id: 'b', ttlMs: 60_000 }),
    signal: ac.signal,
  })
  t.equal(s.table.stats().waiting, 1)
  ac.abort()
  await res.body.text().catch(() => {})
  // The server sees the hang-up on its own turn: bounded wait for the queue to empty.
  for (let i = 0; i < 500 && s.table.stats().waiting > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(s.table.stats().waiting, 0, 'out of the queue')
  t.same(json((await s.post('release', { name: 'n', id: 'a', token: first.token })).text), { released: true })
  t.equal(s.table.stats().held, 0, 'nobody holds it after the release: the gone caller was not granted')
})

t.test('acquire refusals come as the last line: queue-full, and closing', async (t) => {
  const s = await lockServer(t, 1)
  await s.post('acquire', { name: 'n', id: 'a', ttlMs: 60_000 })
  const waiting = request(`${s.url}/acquire`, { method: 'POST', body: JSON.stringify({ name: 'n', id: 'b', ttlMs: 60_000 }) })
  const waitingRes = await waiting
  const full = await s.post('acquire', { name: 'n', id: 'c', ttlMs: 60_000 })
  t.equal(full.status, 200, 'the long-poll has sent its headers: the refusal is in the body')
  t.match(json(full.text), { error: 'queue-full', message: /1 callers wait already/ })
  s.table.close()
  t.match(json(await waitingRes.body.text()), { error: 'closing' }, 'a waiter at close')
  t.match(json((await s.post('acquire', { name: 'm', id: 'a', ttlMs: 1 })).text), { error: 'closing' }, 'after close')
})

t.test('acquire at a peer that does not own the name: misdirected, and the owner it names is checked', async (t) => {
  const s = await lockServer(t)
  s.owner.of = OTHER
  const got = await s.post('acquire', { name: 'n', id: 'a', ttlMs: 1000 })
  t.equal(got.status, 200)
  t.same(json(got.text), { error: 'misdirected', message: `${OTHER} owns this lock here` })
  t.same(s.checked, [OTHER])
  t.equal(s.table.stats().waiting + s.table.stats().held, 0, 'nothing queued')
})

t.test('record: a plausible record is taken; an older one answers what is known here', async (t) => {
  const s = await lockServer(t)
  s.owner.of = OTHER // a replica
  const token = Date.now() * 1000
  const holder = { id: 'a', token, ttlMs: 60_000 }
  t.same(json((await s.post('record', { name: 'n', holder, lastToken: token, ended: 0 })).text), { ok: true })
  const older = json((await s.post('record', { name: 'n', holder: null, lastToken: token - 5 })).text)
  t.match(older, { conflict: { holder: { id: 'a', token }, lastToken: token, ended: 0 } }, 'refused, with the live lease known here')
  t.same(json((await s.post('record', { name: 'n', holder: null, lastToken: token + 1, ended: token })).text), { ok: true }, 'ended')
})

t.test('bad requests: 400 with a reason, and nothing changes', async (t) => {
  const s = await lockServer(t)
  const now = Date.now() * 1000
  const far = (Date.now() + 3_600_000) * 1000
  const cases: [string, string, unknown, RegExp][] = [
    ['acquire', 'not JSON', '{name', /the body is not JSON/],
    ['acquire', 'null', 'null', /not a JSON object/],
    ['acquire', 'a number', '42', /not a JSON object/],
    ['acquire', 'no name', { id: 'a', ttlMs: 1 }, /non-empty string/],
    ['acquire', 'an empty name', { name: '', id: 'a', ttlMs: 1 }, /non-empty string/],
    ['acquire', 'a name too long', { name: 'x'.repeat(4097), id: 'a', ttlMs: 1 }, /at most 4096 bytes/],
    ['acquire', 'no id', { name: 'n', ttlMs: 1 }, /id must be a string of 1 to 128/],
    ['acquire', 'an id of 129', { name: 'n', id: 'i'.repeat(129), ttlMs: 1 }, /id must be/],
    ['acquire', 'ttlMs 0', { name: 'n', id: 'a', ttlMs: 0 }, /ttlMs must be an integer from 1 to/],
    ['acquire', 'ttlMs 1.5', { name: 'n', id: 'a', ttlMs: 1.5 }, /ttlMs must be/],
    ['acquire', 'ttlMs past a day', { name: 'n', id: 'a', ttlMs: MAX_LOCK_TTL_MS + 1 }, /ttlMs must be/],
    ['acquire', 'ttlMs a string', { name: 'n', id: 'a', ttlMs: '100' }, /ttlMs must be/],
    ['release', 'token 0', { name: 'n', id: 'a', token: 0 }, /token must be a plausible positive integer/],
    ['release', 'a token from the future', { name: 'n', id: 'a', token: far }, /token must be/],
    ['release', 'a token string', { name: 'n', id: 'a', token: '1' }, /token must be/],
    ['record', 'no lastToken', { name: 'n', holder: null }, /a record is/],
    ['record', 'ended from the future', { name: 'n', holder: null, lastToken: now, ended: far }, /a record is/],
    ['record', 'holder a string', { name: 'n', holder: 'a', lastToken: now }, /a record is/],
    ['record', 'holder without token', { name: 'n', holder: { id: 'a', ttlMs: 1 }, lastToken: now }, /a record is/],
    ['record', 'holder ttl negative', { name: 'n', holder: { id: 'a', token: now, ttlMs: -1 }, lastToken: now }, /a record is/],
    ['record', 'holder id too long', { name: 'n', holder: { id: 'i'.repeat(129), token: now, ttlMs: 1 }, lastToken: now }, /a record is/],
  ]
  for (const [op, what, body, message] of cases) {
    const got = await s.post(op, body)
    t.equal(got.status, 400, `${op}, ${what}: 400`)
    t.equal(got.headers[HEADER.error], 'bad-request')
    t.match(json(got.text), { error: 'bad-request', message }, `${op}, ${what}: the reason`)
  }
  t.same(s.table.stats(), { held: 0, waiting: 0, grants: 0, releases: 0, expiries: 0 }, 'nothing changed')
  const unknown = await s.post('steal', { name: 'n', id: 'a' })
  t.equal(unknown.status, 404, 'an unknown operation')
  t.match(json(unknown.text), { error: 'bad-request', message: /no lock operation "steal"/ })
})

t.test('the body is bounded, and must match its signed digest', async (t) => {
  const s = await lockServer(t)
  const big = await s.post('acquire', JSON.stringify({ name: 'n', id: 'a', ttlMs: 1, pad: 'x'.repeat(17 * 1024) }))
  t.equal(big.status, 413, 'over 16 KiB')
  const body = JSON.stringify({ name: 'n', id: 'a', ttlMs: 1000 })
  const forged = await s.post('acquire', body, { 'x-test-digest': digestOf(Buffer.from('{"name":"other"}')) })
  t.equal(forged.status, 401, 'a body other than the one signed')
  t.equal(s.table.stats().grants, 0, 'nothing granted')
  const signed = await s.post('acquire', body, { 'x-test-digest': digestOf(Buffer.from(body)) })
  t.equal(signed.status, 200)
  t.ok(json(signed.text).token, 'the body signed is granted')
})
