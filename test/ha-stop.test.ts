// A hung member (SIGSTOP: its sockets stay open, it answers nothing) costs callers about one
// peerTimeoutMs once, not on every get; after SIGCONT the probes bring it back.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { GROUP, haGroups, keyRange, startHaCluster, until } from './helpers/ha.js'

// Above the default (1 s), so that a healthy member starved of CPU on a shared machine does not look hung.
const PEER_TIMEOUT_MS = 2000
const WORKERS_PER_MEMBER = 4

t.test('SIGSTOP of the owner, then SIGCONT: no failed get, one wait at most per worker, probed back up', async (t) => {
  const cluster = await startHaCluster(t, { size: 3, groups: haGroups(2), peer: { peerTimeoutMs: PEER_TIMEOUT_MS } })
  const keys = keyRange('s', 300)
  const [victim, ...survivors] = cluster.members as [(typeof cluster.members)[0], ...typeof cluster.members]
  t.equal((await survivors[0]!.fill(GROUP, keys)).failed, 0, 'filled')

  // Long enough to span the stop, the detection and a while after it; bounded whatever happens.
  const running = survivors.map((m, i) =>
    m.workers(GROUP, keys, { concurrency: WORKERS_PER_MEMBER, durationMs: 7000, pauseMs: 1, slowMs: 0.8 * PEER_TIMEOUT_MS, seed: i + 1 }),
  )
  await sleep(500)
  victim.stop()
  await until(
    async () => (await Promise.all(survivors.map((m) => m.stateOf(victim)))).every((s) => s !== 'up'),
    'every survivor routes around the stopped member',
  )
  await sleep(1500) // gets go on meanwhile, none of them waiting on the stopped member
  victim.cont()
  const reports = await Promise.all(running)

  for (const [i, r] of reports.entries()) t.equal(r.failed, 0, `${survivors[i]!.name}: no failed get`, { errors: r.errors })
  const slow = reports.flatMap((r) => r.slow)
  const workers = WORKERS_PER_MEMBER * survivors.length
  t.ok(
    slow.length < workers * 2,
    `gets that waited on the stopped member: ${slow.length}, fewer than ${workers * 2} (${workers} workers)`,
    { slow },
  )

  await until(
    async () => (await Promise.all(survivors.map((m) => m.stateOf(victim)))).every((s) => s === 'up'),
    'the survivors see it up again',
  )
  const back = (await survivors[0]!.transitions()).filter((c) => c.peer === victim.url).at(-1)
  t.match(back, { to: 'up', reason: /^(probe-ok|answered)$/ }, 'brought back by a probe')

  // Routed to again: new keys it owns are loaded by it, not by its successor.
  const fresh = cluster.keysOf(victim, keyRange('fresh', 100))
  t.equal((await survivors[0]!.fill(GROUP, fresh)).failed, 0, 'its new keys answer')
  const loads = await victim.loads(GROUP)
  t.same(
    fresh.filter((k) => loads.byKey[k] !== 1),
    [],
    'and were loaded by it',
  )
})

// Batches in flight to a peer that goes down are aborted (client.abortPeer), and a batch whose answer
// goes silent asks health to check the peer: a hung owner costs about peerTimeoutMs + probeTimeoutMs.
t.test('a get already answered (headers) by the owner when it hangs is released once the owner is known down', async (t) => {
  // A slow origin, so that the owner has sent the batch's headers and is still loading when it is stopped.
  const LOAD_MS = 2000
  const FETCH_TIMEOUT_MS = 20_000
  const cluster = await startHaCluster(t, {
    size: 3,
    groups: haGroups(2, LOAD_MS),
    peer: { peerTimeoutMs: 1000, fetchTimeoutMs: FETCH_TIMEOUT_MS },
  })
  const [owner, asker] = cluster.members as [(typeof cluster.members)[0], (typeof cluster.members)[0]]
  const [first, second] = cluster.keysOf(owner, keyRange('inflight', 100)) as [string, string]

  const inFlight = asker.get(GROUP, first).then(
    (v) => ({ ok: true as const, ms: v.ms }),
    (err: Error) => ({ ok: false as const, err }),
  )
  // The owner answers a batch with headers before it looks anything up: once its load began, they were sent.
  await until(async () => (await owner.loads(GROUP)).byKey[first] === 1, 'the owner is loading the key')
  owner.stop()
  // Another get finds the owner hung (peerTimeoutMs) and is answered by the replica.
  await asker.get(GROUP, second)
  t.not(await asker.stateOf(owner), 'up', 'the asker knows the owner is hung')

  // Bound far below fetchTimeoutMs: the point is that the first get does not sit out the body timeout.
  const bound = sleep(FETCH_TIMEOUT_MS / 2).then(() => 'still waiting' as const)
  const outcome = await Promise.race([inFlight, bound])
  t.match(outcome, { ok: true }, `the get in flight settled, from the replica, without waiting out fetchTimeoutMs (${FETCH_TIMEOUT_MS} ms)`)
})
