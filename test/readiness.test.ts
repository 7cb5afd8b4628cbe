// Mirrors lib/readiness.ts: Readiness's states, whenReady/untilReady/markReady/close, and membersKnown against real loopback peers (late, hung, closed during).
import http from 'node:http'
import t from 'tap'
import { ClosedError } from '../lib/errors.js'
import type { HealthProbe } from '../lib/health.js'
import { createHttpProbe } from '../lib/probe.js'
import { Readiness } from '../lib/readiness.js'
import { freePort, hungPeer } from './helpers/net.js'
import type { TapTest } from './helpers/tap.js'

const never = () => {}

/** `promise`'s outcome once the turns already queued have run: 'pending' if it has not settled by then. */
async function state(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  const marker = Symbol('pending')
  const settled = promise.then(
    () => 'resolved' as const,
    () => 'rejected' as const,
  )
  const result = await Promise.race([settled, new Promise<symbol>((resolve) => setImmediate(() => resolve(marker)))])
  return result === marker ? 'pending' : (result as 'resolved' | 'rejected')
}

/** The real HTTP probe, counting its calls and telling when the `n`th has been made. */
function countedProbe(t: TapTest) {
  const real = createHttpProbe({ timeoutMs: 5000 })
  t.teardown(() => real.close())
  let calls = 0
  const waiters: [number, () => void][] = []
  const probe: HealthProbe = (peer, signal) => {
    calls++
    for (const [n, resolve] of waiters) if (calls >= n) resolve()
    return real.probe(peer, signal)
  }
  const called = (n: number) => new Promise<void>((resolve) => (calls >= n ? resolve() : waiters.push([n, resolve])))
  return { probe, called, calls: () => calls }
}

/** A health endpoint on `port` of loopback (200), counting requests. */
async function healthyPeer(t: TapTest, port = 0) {
  let requests = 0
  const server = http.createServer((_req, res) => {
    requests++
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => requests }
}

t.test('ready from the start: every wait resolves at once', async (t) => {
  const r = new Readiness(true, 60_000, never)
  t.equal(r.ready, true)
  t.equal(r.reason, undefined)
  t.equal(await state(r.whenReady()), 'resolved')
  t.equal(await state(r.untilReady()), 'resolved')
})

t.test('not ready: waits hold until markReady, which is idempotent', async (t) => {
  const r = new Readiness(false, 60_000, () => t.fail('no caller was late'))
  t.equal(r.ready, false)
  t.equal(r.reason, 'starting')
  const a = r.whenReady()
  const b = r.whenReady()
  const c = r.untilReady()
  t.same(await Promise.all([state(a), state(b), state(c)]), ['pending', 'pending', 'pending'])
  r.markReady()
  r.markReady()
  t.same(await Promise.all([state(a), state(b), state(c)]), ['resolved', 'resolved', 'resolved'])
  t.equal(r.ready, true)
  t.equal(r.reason, undefined)
})

t.test('close before readiness: whenReady rejects with ClosedError, untilReady resolves, reason is closing', async (t) => {
  const r = new Readiness(false, 60_000, never)
  const waiting = r.whenReady()
  const held = r.untilReady()
  r.close()
  r.close()
  await t.rejects(waiting, ClosedError)
  t.equal(await state(held), 'resolved', 'untilReady never rejects: the caller meets the closed peer')
  await t.rejects(r.whenReady(), ClosedError, 'a later whenReady rejects too')
  t.equal(await state(r.untilReady()), 'resolved')
  t.same([r.ready, r.reason], [false, 'closing'])
  r.markReady()
  t.same([r.ready, r.reason], [false, 'closing'], 'markReady after close does not make it ready')
})

t.test('close with nobody waiting leaves no unhandled rejection', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown) => unhandled.push(err)
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => process.off('unhandledRejection', onUnhandled))
  const r = new Readiness(false, 60_000, never)
  void r.whenReady().then(never, never) // made the promise, then dropped it
  const dropped = new Readiness(false, 60_000, never)
  dropped.whenReady() // a promise nobody handles
  dropped.close()
  r.close()
  await new Promise<void>((resolve) => setImmediate(resolve))
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(unhandled, [])
})

t.test('close after readiness: not ready any more, reason closing', async (t) => {
  const r = new Readiness(true, 60_000, never)
  r.close()
  t.same([r.ready, r.reason], [false, 'closing'])
})

t.test('untilReady gives up after timeoutMs and calls onLate once, however many callers were late', async (t) => {
  let late = 0
  const r = new Readiness(false, 20, () => late++)
  await Promise.all([r.untilReady(), r.untilReady()])
  await r.untilReady()
  t.equal(late, 1, 'onLate once')
  t.equal(r.ready, false, 'giving up does not make it ready')
  t.equal(await state(r.whenReady()), 'pending', 'whenReady still waits')
  r.markReady()
})

t.test('membersKnown: no other member, ready at once; ready or closed, it does nothing', async (t) => {
  const r = new Readiness(false, 60_000, never)
  await r.membersKnown([], () => Promise.reject(new Error('not asked')), 1000)
  t.equal(r.ready, true)
  const closed = new Readiness(false, 60_000, never)
  closed.close()
  let asked = 0
  await closed.membersKnown(['http://127.0.0.1:1'], async () => ++asked > 0, 1000)
  t.same([closed.ready, asked], [false, 0])
})

t.test('membersKnown: a member not listening yet is probed again until it answers, then ready', async (t) => {
  const port = await freePort()
  const peer = `http://127.0.0.1:${port}`
  const early = await healthyPeer(t)
  const { probe, called } = countedProbe(t)
  const r = new Readiness(false, 60_000, never)
  const known = r.membersKnown([early.url, peer], probe, 5000)
  // Two refused probes of the late member, at least (the early one answers once): it is not ready meanwhile.
  await called(3)
  t.equal(r.ready, false, 'not ready while a member has not answered')
  t.equal(await state(r.membersKnown([peer], probe, 5000)), 'resolved', 'a second call while checking returns at once')
  const late = await healthyPeer(t, port)
  await known
  t.equal(r.ready, true, 'ready once every member answered')
  t.ok(late.requests() >= 1, 'the late member was asked once it listened')
  t.equal(early.requests(), 1, 'a member that answered is not asked again')
})

t.test('membersKnown: a member that never answers holds readiness only up to timeoutMs', async (t) => {
  const hung = await hungPeer(t)
  const { probe } = countedProbe(t)
  const r = new Readiness(false, 300, never)
  await r.membersKnown([hung.url], probe, 100)
  t.equal(r.ready, true, 'ready regardless once the bound passed')
  t.ok(hung.connections() >= 1, 'the hung member was asked')
})

t.test('membersKnown: close while probing aborts the probe and leaves it not ready', async (t) => {
  const hung = await hungPeer(t)
  let aborted: () => void = never
  const abortSeen = new Promise<void>((resolve) => {
    aborted = resolve
  })
  const { probe, called } = countedProbe(t)
  const watching: HealthProbe = (peer, signal) => {
    signal.addEventListener('abort', aborted)
    return probe(peer, signal)
  }
  const r = new Readiness(false, 60_000, never)
  const known = r.membersKnown([hung.url], watching, 60_000)
  await called(1)
  r.close()
  await abortSeen
  await known
  t.same([r.ready, r.reason], [false, 'closing'], 'membersKnown ended without marking ready')
})
