// PeerHealth: the state machine with scripted probes, then the real thing over HTTP on loopback.
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { InvalidOptionError } from '../lib/errors.js'
import { type HealthProbe, PeerHealth, type PeerHealthOptions } from '../lib/health.js'
import { createHttpProbe } from '../lib/probe.js'

const A = 'http://127.0.0.1:1'
const B = 'http://127.0.0.1:2'

/** Polls until `cond` holds; the bound is only there so a broken build fails instead of hanging. */
async function until(cond: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  const end = Date.now() + limitMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`still waiting for: ${what}`)
    await sleep(2)
  }
}

/** A probe whose answers the test gives one call at a time; it counts calls and the most at once. */
function scriptedProbe(honorSignal = true) {
  const calls: { peer: string; signal: AbortSignal; answer: (ok: boolean) => void }[] = []
  let running = 0
  let maxRunning = 0
  const probe: HealthProbe = (peer, signal) =>
    new Promise<boolean>((resolve, reject) => {
      running++
      maxRunning = Math.max(maxRunning, running)
      let settled = false
      const done = () => {
        if (!settled) running--
        settled = true
      }
      calls.push({ peer, signal, answer: (ok) => (done(), resolve(ok)) })
      if (honorSignal) signal.addEventListener('abort', () => (done(), reject(signal.reason)), { once: true })
    })
  return {
    probe,
    calls,
    get running() {
      return running
    },
    get maxRunning() {
      return maxRunning
    },
  }
}

/** A PeerHealth closed at the end of the test, whose changes are recorded as "from>to:reason". */
function makeHealth(t: Test, options: PeerHealthOptions) {
  const changes: string[] = []
  const health = new PeerHealth({
    ...options,
    onChange: (peer, from, to, reason) => changes.push(`${peer === A ? 'A' : peer === B ? 'B' : peer} ${from}>${to}:${reason}`),
  })
  t.teardown(() => health.close())
  return { health, changes }
}

const snap = (h: PeerHealth, peer: string) => h.snapshot().find((s) => s.peer === peer)
/** A peer health has no record of is up. */
const stateOf = (h: PeerHealth, peer: string) => snap(h, peer)?.state ?? 'up'

t.test('a failure makes a peer suspect and probes it; failuresToDown failures in a row take it down', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, cooldownMs: 5_000 })
  t.equal(health.isAvailable(A), true, 'a peer never heard of is up')
  health.failure(A, new Error('ECONNRESET'))
  t.equal(stateOf(health, A), 'suspect')
  t.equal(health.isAvailable(A), false, 'no new request goes to a suspect')
  t.equal(p.calls.length, 1, 'one confirmation probe at once')
  t.equal(p.calls[0]!.peer, A)
  health.failure(A, new Error('ECONNRESET'))
  t.equal(stateOf(health, A), 'down', 'the second failure in a row does not wait for the probe')
  t.same(changes, ['A up>suspect:failure', 'A suspect>down:failure'])
  t.equal(snap(health, A)!.lastError, 'ECONNRESET')
  p.calls[0]!.answer(false)
  await until(() => snap(health, A)!.nextProbeAt !== undefined, 'the cooldown is scheduled')
  t.equal(stateOf(health, A), 'down')
  t.equal(health.isAvailable(B), true, 'other peers are not affected')
})

t.test('an answer clears the record: failures must be in a row', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, failuresToDown: 3 })
  health.failure(A)
  health.failure(A)
  t.equal(stateOf(health, A), 'suspect', 'two failures of three')
  health.success(A)
  t.equal(stateOf(health, A), 'up')
  t.equal(snap(health, A)!.failures, 0)
  health.failure(A)
  health.failure(A)
  t.equal(stateOf(health, A), 'suspect', 'the count started again')
  health.failure(A)
  t.equal(stateOf(health, A), 'down')
  health.success(A)
  t.equal(health.isAvailable(A), true, 'a late answer brings a down peer back at once')
  t.same(changes, ['A up>suspect:failure', 'A suspect>up:answered', 'A up>suspect:failure', 'A suspect>down:failure', 'A down>up:answered'])
  health.success(B)
  t.same(
    health.snapshot().map((s) => s.peer),
    [A],
    'success() of a healthy peer records nothing',
  )
})

t.test('one failed request reported by each of its waiters counts once', async (t) => {
  const p = scriptedProbe()
  const { health } = makeHealth(t, { probe: p.probe })
  const batchFailed = new Error('ECONNRESET')
  for (let key = 0; key < 50; key++) health.failure(A, batchFailed) // fifty gets shared one request
  t.equal(stateOf(health, A), 'suspect', 'suspect, not down: the probe still decides')
  t.equal(snap(health, A)!.failures, 1)
  health.failure(A, new Error('ECONNRESET'))
  t.equal(stateOf(health, A), 'down', 'a second request failing is a second failure')
})

t.test('the confirmation probe decides a suspicion', async (t) => {
  const answers = new Map([
    [A, false],
    [B, true],
  ])
  const { health, changes } = makeHealth(t, { probe: async (peer) => answers.get(peer)!, cooldownMs: 5_000 })
  health.failure(A)
  health.failure(B)
  await until(() => stateOf(health, A) === 'down' && stateOf(health, B) === 'up', 'both probes decided')
  t.same(changes, ['A up>suspect:failure', 'B up>suspect:failure', 'A suspect>down:probe-failed', 'B suspect>up:probe-ok'])
  t.match(snap(health, A), { probes: 1, failedProbes: 1, downs: 1 })
  t.match(snap(health, B), { probes: 1, failedProbes: 0, downs: 0 })
})

t.test('a suspicion a probe cleared stays on probation until the peer answers a request', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, cooldownMs: 5_000 })
  health.failure(A)
  p.calls[0]!.answer(true)
  await until(() => stateOf(health, A) === 'up', 'the probe cleared it')
  health.failure(A)
  t.equal(stateOf(health, A), 'down', 'health answers but requests fail: down on the next failure')
  t.equal(p.calls.length, 1, 'without a second confirmation probe')
  health.success(A)
  health.failure(A)
  t.equal(stateOf(health, A), 'suspect', 'an answered request ends the probation')
  t.equal(p.calls.length, 2)
  t.same(changes, ['A up>suspect:failure', 'A suspect>up:probe-ok', 'A up>down:failure', 'A down>up:answered', 'A up>suspect:failure'])
})

t.test('while down, the cooldown between probes doubles up to the cap, with jitter', async (t) => {
  const randoms = [0, 0.5, 0.99]
  let r = 0
  const probedAt: number[] = []
  const waits: number[] = []
  const { health } = makeHealth(t, {
    probe: async (peer) => {
      probedAt.push(performance.now())
      waits.push(snap(health, peer)!.cooldownMs)
      return false
    },
    cooldownMs: 10,
    maxCooldownMs: 80,
    random: () => randoms[r++ % randoms.length]!,
  })
  health.markDown(A)
  await until(() => probedAt.length >= 7, 'seven probes')
  health.success(A) // stops the probes (an answer, as a request would give)
  const ceilings = [10, 20, 40, 80, 80, 80, 80]
  const expected = ceilings.map((c, i) => Math.round(c / 2 + (c / 2) * randoms[i % 3]!))
  t.same(waits, expected, 'each wait is drawn between half and all of a doubling cooldown')
  // Measured gaps only bound from below, loosely: a timer can fire a little early against
  // performance.now() (libuv's cached loop time), and a busy machine makes gaps longer.
  const elapsed = probedAt[6]! - probedAt[0]!
  const drawn = waits.slice(1).reduce((a, b) => a + b)
  t.comment(
    `gaps ${probedAt
      .slice(1)
      .map((at, i) => (at - probedAt[i]!).toFixed(1))
      .join(', ')} ms; drawn ${waits.slice(1).join(', ')} ms`,
  )
  t.ok(elapsed >= drawn / 2, `the six gaps took ${elapsed.toFixed(0)} ms, at least half of the ${drawn} ms drawn`)
  t.equal(snap(health, A)!.nextProbeAt, undefined, 'the answer cancelled the next probe')
})

t.test('a probe that succeeds brings a down peer back; the longer cooldown lasts until it answers a request', async (t) => {
  let calls = 0
  const { health, changes } = makeHealth(t, { probe: async () => ++calls === 4, cooldownMs: 10, maxCooldownMs: 1_000, random: () => 0.5 })
  health.markDown(A)
  await until(() => stateOf(health, A) === 'up', 'the fourth probe succeeds')
  t.equal(calls, 4)
  t.match(snap(health, A), { probing: false, nextProbeAt: undefined, failedProbes: 3 })
  health.markDown(A)
  t.equal(snap(health, A)!.cooldownMs, 120, 'a relapse waits where the last outage left off (10 ms doubled 4 times)')
  health.success(A)
  health.markDown(A)
  t.equal(snap(health, A)!.cooldownMs, 8, 'after an answered request the cooldown starts over')
  t.same(changes, ['A up>down:marked-down', 'A down>up:probe-ok', 'A up>down:marked-down', 'A down>up:answered', 'A up>down:marked-down'])
})

t.test('at most one probe per peer is under way, even when a probe outlives its timeout', async (t) => {
  const p = scriptedProbe(false) // ignores its signal: only answer() ends it
  const { health, changes } = makeHealth(t, { probe: p.probe, probeTimeoutMs: 20, cooldownMs: 5, maxCooldownMs: 10 })
  health.failure(A)
  health.failure(B)
  await until(() => stateOf(health, A) === 'down', 'the probe timed out')
  t.ok(p.calls[0]!.signal.aborted, 'the timed-out probe was told to stop')
  t.match(changes, ['A up>suspect:failure', 'B up>suspect:failure'])
  health.failure(A)
  health.markDown(A)
  await until(() => snap(health, A)!.nextProbeAt === undefined, 'the cooldown ran out while the probe still runs')
  t.equal(p.calls.filter((c) => c.peer === A).length, 1, 'the next probe waits for the first to settle')
  p.calls[0]!.answer(false)
  await until(() => p.calls.filter((c) => c.peer === A).length === 2, 'the waiting probe starts')
  for (let round = 0; round < 3; round++) {
    await until(() => p.calls.at(-1)!.signal.aborted && p.calls.at(-1)!.peer === A, 'it timed out too')
    await sleep(30) // a few cooldowns pass with the probe stuck
    p.calls.at(-1)!.answer(false)
    await until(() => p.calls.filter((c) => c.peer === A).length === 3 + round, 'the next one starts')
  }
  t.equal(p.maxRunning, 2, 'one for A and one for B, never two for one peer')
  t.equal(stateOf(health, A), 'down')
  for (const c of p.calls) c.answer(false)
})

t.test('check() probes an up peer without taking it out of routing; a failed check takes it down', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, cooldownMs: 5_000 })
  health.check(A)
  health.check(A)
  t.equal(p.calls.length, 1, 'one probe, however often asked')
  t.equal(health.isAvailable(A), true, 'still routed to while the probe runs')
  p.calls[0]!.answer(true)
  await until(() => !snap(health, A)!.probing, 'the probe settled')
  t.same(changes, [], 'a passed check changes nothing')
  health.check(A)
  health.success(A) // a request was answered meanwhile: fresher than the probe
  p.calls[1]!.answer(false)
  await until(() => !snap(health, A)!.probing, 'the probe settled')
  t.equal(stateOf(health, A), 'up', 'an answer overrules a probe under way')
  health.check(A)
  p.calls[2]!.answer(false)
  await until(() => stateOf(health, A) === 'down', 'the failed check')
  t.same(changes, ['A up>down:probe-failed'])
  health.check(A)
  t.equal(p.calls.length, 3, 'no check of a peer that is not up: its cooldown probes watch it')
})

t.test('markDown is explicit and overrules a probe already under way; an answer brings the peer back', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, cooldownMs: 5_000 })
  health.success(A)
  t.same(health.snapshot(), [], 'an answer from an unknown peer records nothing')
  health.failure(A)
  health.markDown(A) // it announced that it is leaving
  p.calls[0]!.answer(true) // answered before it began to close
  await sleep(5)
  t.equal(stateOf(health, A), 'down', 'the older probe does not bring it back')
  t.ok(snap(health, A)!.nextProbeAt !== undefined, 'probed again after the cooldown')
  health.success(A)
  t.match(snap(health, A), { state: 'up', failures: 0, nextProbeAt: undefined })
  t.same(changes, ['A up>suspect:failure', 'A suspect>down:marked-down', 'A down>up:answered'])
})

t.test('forget() drops a peer: no more probes, its probe aborted, no event', async (t) => {
  const p = scriptedProbe()
  const { health, changes } = makeHealth(t, { probe: p.probe, cooldownMs: 5, maxCooldownMs: 10 })
  health.markDown(A)
  health.failure(B)
  await until(() => p.calls.some((c) => c.peer === A), 'A is probed')
  health.forget(A)
  health.forget(B)
  t.ok(
    p.calls.every((c) => c.signal.aborted),
    'both probes under way were aborted',
  )
  t.same(health.snapshot(), [])
  t.equal(health.isAvailable(A), true)
  t.equal(health.isAvailable(B), true)
  const calls = p.calls.length
  await sleep(50) // ten cooldowns
  t.equal(p.calls.length, calls, 'no probe after forget')
  t.same(changes, ['A up>down:marked-down', 'B up>suspect:failure'])
  health.failure(B)
  t.equal(stateOf(health, B), 'suspect', 'a forgotten peer starts over')
})

t.test('close() cancels every timer and probe, and later signals do nothing', async (t) => {
  const p = scriptedProbe()
  const health = new PeerHealth({ probe: p.probe, cooldownMs: 5, maxCooldownMs: 10 })
  health.markDown(A)
  health.failure(B)
  await health.close()
  t.ok(p.calls[0]!.signal.aborted, "B's probe was aborted")
  t.equal(p.running, 0)
  t.ok(
    health.snapshot().every((s) => s.nextProbeAt === undefined && !s.probing),
    'no probe due, none running',
  )
  health.failure(B)
  health.markDown(B)
  health.success(A)
  await sleep(50)
  t.equal(p.calls.length, 1, 'no probe ever started after close')
  t.equal(stateOf(health, A), 'down', 'the state is frozen')
})

t.test('an onChange that throws becomes a warning; detection goes on', async (t) => {
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve))
  const health = new PeerHealth({
    probe: async () => false,
    onChange: () => {
      throw new Error('boom')
    },
  })
  t.teardown(() => health.close())
  health.failure(A)
  t.match(await warned, { code: 'PEERCACHE_HEALTH_CALLBACK' })
  await until(() => stateOf(health, A) === 'down', 'the probe still decided')
})

t.test('bad options throw InvalidOptionError', async (t) => {
  const probe = async () => true
  for (const bad of [
    {},
    { probe, failuresToDown: 0 },
    { probe, failuresToDown: 1.5 },
    { probe, probeTimeoutMs: -1 },
    { probe, cooldownMs: 0 },
    { probe, cooldownMs: 100, maxCooldownMs: 50 },
    { probe, random: 1 },
  ]) {
    t.throws(() => new PeerHealth(bad as PeerHealthOptions), InvalidOptionError, JSON.stringify(bad))
  }
})

// ---- the real thing: node:http peers on loopback, probed with createHttpProbe through undici

const HEALTH_PATH = '/_peercache/health'

function listen(server: net.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

/** What a Peer does around a fetch: any answer is a success, no answer a failure. */
async function fetchThrough(health: PeerHealth, agent: Agent, peer: string): Promise<boolean> {
  try {
    const res = await request(`${peer}/_peercache/g/k`, { dispatcher: agent })
    await res.body.dump()
    health.success(peer)
    return true
  } catch (err) {
    health.failure(peer, err)
    return false
  }
}

function httpSetup(t: Test) {
  const probe = createHttpProbe({ timeoutMs: 300 })
  const fetches = new Agent({ headersTimeout: 300, bodyTimeout: 300, connect: { timeout: 300 } })
  const { health, changes } = makeHealth(t, { probe: probe.probe, probeTimeoutMs: 300, cooldownMs: 20, maxCooldownMs: 200 })
  t.teardown(async () => {
    await health.close()
    await probe.close()
    await fetches.destroy()
  })
  return { health, changes, fetches }
}

t.test('HTTP: a stopped peer goes down, and comes back when it listens again on its port', async (t) => {
  let healthRequests = 0
  const server = http.createServer((req, res) => {
    if (req.url === HEALTH_PATH) healthRequests++
    res.end(req.url === HEALTH_PATH ? '{"ok":true}' : 'v')
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const port = await listen(server)
  const peer = `http://127.0.0.1:${port}`
  const { health, changes, fetches } = httpSetup(t)
  t.equal(await fetchThrough(health, fetches, peer), true)
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  const failed = await Promise.all([fetchThrough(health, fetches, peer), fetchThrough(health, fetches, peer)])
  t.same(failed, [false, false], 'the stopped peer refuses connections')
  t.equal(stateOf(health, peer), 'down', 'two failures in a row')
  t.equal(health.isAvailable(peer), false)
  await until(() => snap(health, peer)!.failedProbes >= 2, 'probes keep failing while it is stopped')
  await listen(server, port)
  await until(() => stateOf(health, peer) === 'up', 'a probe finds it again')
  t.ok(healthRequests >= 1, 'through GET /_peercache/health')
  t.equal(await fetchThrough(health, fetches, peer), true)
  // Down by the second failure or by the confirmation probe, whichever came first.
  t.match(
    changes.map((c) => c.slice(c.indexOf(' ') + 1)),
    ['up>suspect:failure', /^suspect>down:(failure|probe-failed)$/, 'down>up:probe-ok'],
  )
  t.equal(changes.length, 3)
})

t.test('HTTP: a hung peer (accepts, never answers) costs one fetch timeout and stays down', async (t) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  const peer = `http://127.0.0.1:${await listen(server)}`
  const { health, changes, fetches } = httpSetup(t)
  let sent = 0
  for (let get = 0; get < 20; get++) {
    // The Peer's routing: only available peers are asked; the others' keys go to the next peer.
    if (health.isAvailable(peer)) {
      sent++
      t.equal(await fetchThrough(health, fetches, peer), false, 'the fetch times out')
    }
  }
  t.equal(sent, 1, 'twenty gets, one fetch to the hung peer')
  await until(() => snap(health, peer)!.failedProbes >= 3, 'three probes timed out')
  t.equal(stateOf(health, peer), 'down')
  t.match(snap(health, peer)!.lastError, /timeout/i)
  t.same(
    changes.map((c) => c.slice(c.indexOf(' ') + 1)),
    ['up>suspect:failure', 'suspect>down:probe-failed'],
    'never back up',
  )
})
