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
  await until(async () => (await Promise.all(survivors.map((m) => m.stateOf(victim)))).every((s) => s !== 'up'), 'every survivor routes around the stopped member')
  await sleep(1500) // gets go on meanwhile, none of them waiting on the stopped member
  victim.cont()
  const reports = await Promise.all(running)

  for (const [i, r] of reports.entries()) t.equal(r.failed, 0, `${survivors[i]!.name}: no failed get`, { errors: r.errors })
  const slow = reports.flatMap((r) => r.slow)
  const workers = WORKERS_PER_MEMBER * survivors.length
  t.ok(slow.length < workers * 2, `gets that waited on the stopped member: ${slow.length}, fewer than ${workers * 2} (${workers} workers)`, { slow })

  await until(async () => (await Promise.all(survivors.map((m) => m.stateOf(victim)))).every((s) => s === 'up'), 'the survivors see it up again')
  const back = (await survivors[0]!.transitions()).filter((c) => c.peer === victim.url).at(-1)
  t.match(back, { to: 'up', reason: /^(probe-ok|answered)$/ }, 'brought back by a probe')

  // Routed to again: new keys it owns are loaded by it, not by its successor.
  const fresh = cluster.keysOf(victim, keyRange('fresh', 100))
  t.equal((await survivors[0]!.fill(GROUP, fresh)).failed, 0, 'its new keys answer')
  const loads = await victim.loads(GROUP)
  t.same(fresh.filter((k) => loads.byKey[k] !== 1), [], 'and were loaded by it')
})
