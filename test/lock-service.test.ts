// peer.lock() between in-process peers on loopback (lib/lock-service.ts, lib/lock-routes.ts): bad
// input, a lease had from another peer's owner, release twice, abort, queue-full, and the lock routes
// refusing unsigned and malformed requests when auth is on. Between real processes, with SIGKILL:
// test/locks-cluster.test.ts.
import t from 'tap'
import { request } from 'undici'
import { Auth } from '../lib/auth.js'
import { AbortError, ClosedError, InvalidLockError, InvalidOptionError, LockError, Peer, PeercacheError } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { findKey, startPeers } from './helpers/peers.js'

const SECRET = 'lock-test-secret-of-32-bytes-xxx'

t.test('bad input is refused at once and queues nothing', async (t) => {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  for (const [name, options] of [
    ['', {}],
    [42, {}],
    ['x'.repeat(5000), {}],
    ['ok', { ttlMs: 0 }],
    ['ok', { ttlMs: 1.5 }],
    ['ok', { ttlMs: 86_400_001 }],
    ['ok', { signal: {} }],
  ] as const) {
    const err = await peer.lock(name as string, options as never).catch((e: unknown) => e)
    t.ok(err instanceof InvalidLockError && err instanceof TypeError, `refused: ${String(name).slice(0, 10)} ${JSON.stringify(options)}`)
  }
  t.equal(peer.lockState('ok').waiting, 0, 'nothing queued')
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', locks: { ttlMs: -1 } }), InvalidOptionError)
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', locks: { nope: 1 } as never }), InvalidOptionError)
})

t.test('a lease from another peer: token, release, release again, expiry reported', async (t) => {
  const { peers, urls, ring } = await startPeers(t, 3, { auth: { secret: SECRET } })
  const name = findKey((k) => ring.owners(k, 1)[0] === urls[1])
  const lease = await peers[0]!.lock(name, { ttlMs: 60_000 })
  t.ok(Number.isSafeInteger(lease.token) && lease.token > 0, 'a positive integer token')
  t.equal(peers[1]!.lockState(name).holder?.token, lease.token, 'the owner holds it')
  for (const i of [0, 2]) t.equal(peers[i]!.lockState(name).holder?.token, lease.token, `peer ${i} has it on record`)
  t.same(await lease.release(), { released: true })
  t.same(await lease.release(), { released: false, reason: 'released' }, 'a second release says so')
  const short = await peers[2]!.lock(name, { ttlMs: 30 })
  const next = await peers[0]!.lock(name, { ttlMs: 60_000 })
  t.ok(next.token > short.token && short.token > lease.token, 'tokens increase')
  t.same(await short.release(), { released: false, reason: 'expired' }, 'the expired lease reports it')
  t.same(await next.release(), { released: true })
})

t.test('abort: before the call, and while waiting at a remote owner', async (t) => {
  const { peers, urls, ring } = await startPeers(t, 2)
  const name = findKey((k) => ring.owners(k, 1)[0] === urls[1])
  const gone = new AbortController()
  gone.abort(new Error('mine'))
  const before = await peers[0]!.lock(name, { signal: gone.signal }).catch((e: unknown) => e)
  t.ok(before instanceof AbortError && before instanceof PeercacheError, 'an aborted signal: an AbortError, a PeercacheError')
  t.equal(((before as Error).cause as Error).message, 'mine', 'with the signal’s reason as its cause')
  const held = await peers[1]!.lock(name, { ttlMs: 60_000 })
  const ac = new AbortController()
  const waiting = peers[0]!.lock(name, { signal: ac.signal })
  while (peers[1]!.lockState(name).waiting === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  ac.abort()
  const err = (await waiting.catch((e: unknown) => e)) as Error
  t.ok(err instanceof AbortError && err.code === 'ABORT_ERR', 'rejects with an AbortError (code ABORT_ERR)')
  while (peers[1]!.lockState(name).waiting !== 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.pass('the wait left the owner’s queue')
  await held.release()
  const after = await peers[1]!.lock(name, { ttlMs: 60_000 })
  t.ok(after.token > held.token, 'the next caller gets the lease: the aborted one never held it')
})

t.test('queue-full past maxWaiters; a closed peer refuses', async (t) => {
  const { peers, urls, ring } = await startPeers(t, 2, { locks: { maxWaiters: 1 } })
  const name = findKey((k) => ring.owners(k, 1)[0] === urls[0])
  await peers[0]!.lock(name, { ttlMs: 60_000 })
  const second = peers[1]!.lock(name)
  while (peers[0]!.lockState(name).waiting === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const full = await peers[0]!.lock(name).catch((e: unknown) => e)
  t.ok(full instanceof LockError && full.reason === 'queue-full', 'one waiter too many')
  void second.catch(() => {}) // rejects with ClosedError when peers[1] closes at teardown
  await peers[0]!.close()
  t.ok((await peers[0]!.lock('x').catch((e: unknown) => e)) instanceof ClosedError, 'a closed peer refuses')
})

t.test('with auth, the lock routes refuse unsigned and malformed requests', async (t) => {
  const { urls } = await startPeers(t, 1, { auth: { secret: SECRET } })
  const send = async (op: string, body: unknown, signed: boolean) => {
    const path = `/_peercache/lock-${op}`
    const bytes = Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.from]: 'http://127.0.0.1:9' }
    if (signed) Object.assign(headers, new Auth({ secret: SECRET }).sign('POST', path, headers[HEADER.from]!, bytes))
    const res = await request(`${urls[0]}${path}`, { method: 'POST', headers, body: bytes })
    return { status: res.statusCode, text: await res.body.text() }
  }
  for (const op of ['acquire', 'release', 'record']) {
    t.equal((await send(op, { name: 'n', id: 'i', ttlMs: 1000 }, false)).status, 401, `unsigned ${op}: 401`)
  }
  t.equal((await send('acquire', { name: '', id: 'i', ttlMs: 1000 }, true)).status, 400, 'an empty name: 400')
  t.equal((await send('acquire', { name: 'n', id: 'i', ttlMs: -5 }, true)).status, 400, 'a bad ttl: 400')
  t.equal((await send('record', { name: 'n', holder: null, lastToken: 1e300 }, true)).status, 400, 'an implausible token: 400')
  t.equal((await send('nope', { name: 'n', id: 'i' }, true)).status, 404, 'no such operation: 404')
  const granted = await send('acquire', { name: 'n', id: 'i', ttlMs: 1000 }, true)
  t.equal(granted.status, 200, 'a signed acquire is served')
  t.match(JSON.parse(granted.text.trim()), { token: Number }, 'and granted')
})
