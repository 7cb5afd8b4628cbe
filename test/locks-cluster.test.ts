// Lease locks between real OS processes (test/fixtures/lock-member.mjs): mutual exclusion under
// contention, release, expiry, abort while waiting, waiter order, and the death of a lock's owner
// (SIGKILL): the lease it granted is still held at the next owner, and tokens keep increasing.
// Nothing here is timed: order and counts only (waits are bounded so a broken build fails, not hangs).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { type Cluster, type Member, startCluster } from './helpers/cluster.js'
import { until } from './helpers/ha.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/lock-member.mjs', import.meta.url))

interface Pending {
  handle: number
  granted: boolean
  token?: number
  error?: { name: string; code?: string; message: string }
}
interface LockState {
  holder: { token: number; expiresAt: number } | undefined
  lastToken: number
  waiting: number
}
interface ContendReport {
  grants: number
  notReleased: unknown[]
  errors: string[]
}

/** Three lock members; peers patient enough for a loaded machine. */
function startLocks(t: Parameters<typeof startCluster>[0]): Promise<Cluster> {
  return startCluster(t, { size: 3, groups: {}, fixture: FIXTURE, peer: { peerTimeoutMs: 5000 } })
}

const acquire = (m: Member, name: string, ttlMs: number, wait = true) => m.request<Pending>('acquire', { name, ttlMs, wait })
const pending = (m: Member, handle: number) => m.request<Pending>('pending', { handle })
const release = (m: Member, handle: number) => m.request<{ released: boolean; reason?: string }>('release', { handle })
const state = (m: Member, name: string) => m.request<LockState>('state', { name })

/** The owner of `name` and the others, in ring order (the first of the others is the next owner). */
function holders(cluster: Cluster, name: string): Member[] {
  return cluster
    .ring()
    .owners(name, 3)
    .map((url) => cluster.members.find((m) => m.url === url)!)
}

t.test('mutual exclusion under contention from 3 processes', async (t) => {
  const cluster = await startLocks(t)
  const dir = mkdtempSync(join(tmpdir(), 'peercache-locks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'holders.log')
  const count = 25
  const reports = await Promise.all(
    cluster.members.map((m) =>
      m.request<ContendReport>('contend', { name: 'shared', file, workers: 2, count, durationMs: 90_000 }, 120_000),
    ),
  )
  for (const [i, r] of reports.entries()) {
    t.equal(r.grants, count, `member ${i} had its ${count} grants`, { errors: r.errors })
    t.same(r.notReleased, [], `member ${i}: every lease was released`)
  }
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.equal(lines.length, 2 * 3 * count, 'an enter and an exit line per grant')
  const overlaps: string[] = []
  let last = 0
  for (let i = 0; i < lines.length; i += 2) {
    const [enter, token, who] = lines[i]!.split(' ')
    const exit = lines[i + 1]
    if (enter !== 'enter' || exit !== `exit ${token} ${who}`) overlaps.push(`line ${i}: ${lines[i]} then ${exit}`)
    if (Number(token) <= last) overlaps.push(`line ${i}: token ${token} after ${last}`)
    last = Number(token)
  }
  t.same(overlaps, [], 'each holder left before the next entered, and tokens strictly increase in that order')
})

t.test('a waiter gets the lease when it is released, not before; then when it expires', async (t) => {
  const cluster = await startLocks(t)
  const [owner, a, b] = holders(cluster, 'job')
  const held = await acquire(a!, 'job', 60_000)
  t.ok(held.granted && held.token! > 0, 'a holds the lease')
  const waiting = await acquire(b!, 'job', 500, false)
  await until(async () => (await state(owner!, 'job')).waiting === 1, 'b queued at the owner')
  t.notOk((await pending(b!, waiting.handle)).granted, 'b waits while a holds the lease')
  t.same(await release(a!, held.handle), { released: true }, 'a releases')
  await until(async () => (await pending(b!, waiting.handle)).granted, 'b granted')
  const got = await pending(b!, waiting.handle)
  t.ok(got.token! > held.token!, 'b got a larger token')

  // b never releases: its lease ends after its 500 ms ttl, and a's next wait is granted then.
  const next = await acquire(a!, 'job', 60_000)
  t.ok(next.granted && next.token! > got.token!, 'the lease went on once b’s ttl ran out')
  t.same(await release(b!, waiting.handle), { released: false, reason: 'expired' }, 'b’s release reports the expiry')
  t.same(await release(a!, next.handle), { released: true })
})

t.test('waiters are served in arrival order; one that aborts rejects at once and never holds the lease', async (t) => {
  const cluster = await startLocks(t)
  const [owner, x, y] = holders(cluster, 'queue')
  const first = await acquire(owner!, 'queue', 60_000)
  const w1 = await acquire(x!, 'queue', 60_000, false)
  await until(async () => (await state(owner!, 'queue')).waiting === 1, 'x queued')
  const quitter = await acquire(owner!, 'queue', 60_000, false)
  await until(async () => (await state(owner!, 'queue')).waiting === 2, 'the quitter queued')
  const w2 = await acquire(y!, 'queue', 60_000, false)
  await until(async () => (await state(owner!, 'queue')).waiting === 3, 'y queued')

  const aborted = await owner!.request<Pending>('abort', { handle: quitter.handle })
  t.equal(aborted.error?.name, 'AbortError', 'the aborted wait rejected with an AbortError')
  t.notOk(aborted.granted, 'and was not granted')
  await until(async () => (await state(owner!, 'queue')).waiting === 2, 'the quitter left the queue')

  t.same(await release(owner!, first.handle), { released: true })
  await until(async () => (await pending(x!, w1.handle)).granted, 'x granted')
  t.notOk((await pending(y!, w2.handle)).granted, 'y, who came after x, still waits')
  const tx = (await pending(x!, w1.handle)).token!
  t.same(await release(x!, w1.handle), { released: true })
  await until(async () => (await pending(y!, w2.handle)).granted, 'y granted')
  const ty = (await pending(y!, w2.handle)).token!
  t.ok(first.token! < tx && tx < ty, 'tokens in grant order')
  t.notOk((await pending(owner!, quitter.handle)).granted, 'the aborted caller never held it')
  t.equal((await state(owner!, 'queue')).holder?.token, ty, 'the owner shows y as the holder')
})

t.test('the owner is killed: its live lease stays held at the next owner, and tokens keep increasing', async (t) => {
  const cluster = await startLocks(t)
  const [owner, next, third] = holders(cluster, 'leader') as [Member, Member, Member]
  // A few grants first, so there is a history of tokens.
  const history: number[] = []
  for (const m of [next, third, owner]) {
    const p = await acquire(m, 'leader', 60_000)
    history.push(p.token!)
    t.same(await release(m, p.handle), { released: true })
  }
  const held = await acquire(third, 'leader', 60_000)
  history.push(held.token!)
  t.same((await state(next, 'leader')).holder?.token, held.token, 'the next owner has the lease on record before the kill')

  await owner.kill('SIGKILL')
  const waiting = await acquire(next, 'leader', 60_000, false)
  await until(async () => (await state(next, 'leader')).waiting === 1, 'the wait queued at the new owner', 30_000)
  const seen = await state(next, 'leader')
  t.equal(seen.holder?.token, held.token, 'the new owner holds the live lease for its holder')
  t.notOk((await pending(next, waiting.handle)).granted, 'no second grant while it is held')

  t.same(await release(third, held.handle), { released: true }, 'its holder releases it at the new owner')
  await until(async () => (await pending(next, waiting.handle)).granted, 'the waiter granted', 30_000)
  const after = (await pending(next, waiting.handle)).token!
  history.push(after)
  t.ok(
    history.every((tk, i) => i === 0 || tk > history[i - 1]!),
    'tokens strictly increase across the owner’s death',
    { history },
  )
})

t.test('the owner is killed and the holder never releases: the lease ends at the next owner after its ttl, not before', async (t) => {
  const cluster = await startLocks(t)
  const [owner, next, third] = holders(cluster, 'lapse') as [Member, Member, Member]
  // A ttl well past the time the survivors take to route around the dead owner (0.2 to 1.4 s in
  // test/bench/locks.mjs on the loaded machine), so the wait reaches the new owner while the lease lives.
  const held = await acquire(third, 'lapse', 8000)
  await owner.kill('SIGKILL')
  const waiting = await acquire(next, 'lapse', 60_000, false)
  await until(async () => (await state(next, 'lapse')).waiting === 1, 'the wait queued at the new owner', 30_000)
  t.equal((await state(next, 'lapse')).holder?.token, held.token, 'the new owner holds the lease for its holder')
  t.notOk((await pending(next, waiting.handle)).granted, 'and the wait is not granted while it lives')
  await until(async () => (await pending(next, waiting.handle)).granted, 'the waiter granted once the ttl ran out', 30_000)
  const got = await pending(next, waiting.handle)
  t.ok(got.token! > held.token!, 'with a larger token')
  t.same(await release(third, held.handle), { released: false, reason: 'expired' }, 'the old holder is told its lease expired')
  t.same(await release(next, waiting.handle), { released: true })
})
