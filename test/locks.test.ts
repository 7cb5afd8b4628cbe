// The owner's lock table (lib/locks.ts) on its own: three tables in this process stand for an owner
// and its two replicas, wired to each other through the same record() the routes call, so grants,
// the queue, expiry, cancellation and a change of owner are seen without a network.
import t from 'tap'
import { ClosedError, LockError } from '../lib/errors.js'
import { type Grant, type LockRecord, LockTable } from '../lib/locks.js'

interface Trio {
  tables: LockTable[]
  /** Which table owns every name now (index into tables). */
  owner: { index: number }
  /** Replicas that cannot be reached yet are not known to be down: a record to them fails. */
  unreachable: Set<number>
  /** Tables known to be down: routed around, as the membership does. */
  down: Set<number>
  /** When set, every record waits for it before it is taken. */
  gate: { promise: Promise<void> | undefined }
}

/** Three tables: `owner.index` grants, and records on the two others (those not unreachable). */
function trio(t: Tap, maxWaiters = 100): Trio {
  const trio: Trio = { tables: [], owner: { index: 0 }, unreachable: new Set(), down: new Set(), gate: { promise: undefined } }
  for (let i = 0; i < 3; i++) {
    trio.tables.push(
      new LockTable({
        maxWaiters,
        retryMs: 5,
        replicator: {
          isOwner: () => trio.owner.index === i,
          record: async (name: string, record: LockRecord) => {
            await trio.gate.promise
            let newest: LockRecord | undefined
            for (let j = 0; j < 3; j++) {
              if (j === i || trio.down.has(j)) continue
              if (trio.unreachable.has(j)) throw new Error(`table ${j} unreachable`)
              const conflict = trio.tables[j]!.record(name, JSON.parse(JSON.stringify(record)) as LockRecord)
              if (conflict !== undefined && (newest === undefined || conflict.lastToken > newest.lastToken)) newest = conflict
            }
            return newest
          },
        },
      }),
    )
  }
  t.teardown(() => {
    for (const table of trio.tables) table.close()
  })
  return trio
}

/** A wait whose grant can be looked at without awaiting it. */
function tracked(grant: Promise<Grant>): { granted: () => boolean; grant: Promise<Grant> } {
  let granted = false
  const out = grant.then((g) => ((granted = true), g))
  out.catch(() => {}) // a wait left pending is rejected by the teardown's close: not an unhandled rejection
  return { granted: () => granted, grant: out }
}

/** Lets every record under way finish: the tables here talk through promises only, so one turn of the event loop settles them. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

t.test('waiters are granted in arrival order, one at a time, with increasing tokens', async (t) => {
  const { tables } = trio(t)
  const owner = tables[0]!
  const order: string[] = []
  const grants = new Map<string, Grant>()
  const waits = ['a', 'b', 'c', 'd'].map((id) =>
    owner.acquire('L', id, 60_000).then((g) => {
      order.push(id)
      grants.set(id, g)
      return g
    }),
  )
  await waits[0]
  t.same(order, ['a'], 'only the first holds the lease')
  for (const [i, id] of ['a', 'b', 'c'].entries()) {
    t.same(await owner.release('L', id, grants.get(id)!.token), { released: true }, `${id} releases`)
    await waits[i + 1]
  }
  t.same(order, ['a', 'b', 'c', 'd'], 'granted in the order they came')
  const tokens = order.map((id) => grants.get(id)!.token)
  t.ok(
    tokens.every((tk, i) => i === 0 || tk > tokens[i - 1]!),
    'tokens strictly increase',
  )
  t.ok(
    tokens.every((tk) => Number.isSafeInteger(tk) && tk > 0),
    'tokens are positive integers',
  )
})

t.test('a grant is on every replica before its caller hears of it', async (t) => {
  const { tables } = trio(t)
  const grant = await tables[0]!.acquire('L', 'a', 60_000)
  for (const i of [1, 2]) {
    const known = tables[i]!.known('L')
    t.equal(known.holder?.id, 'a', `replica ${i} knows the holder`)
    t.equal(known.lastToken, grant.token, `replica ${i} knows the token`)
  }
  await tables[0]!.release('L', 'a', grant.token)
  t.equal(tables[1]!.known('L').holder, undefined, 'the release reaches the replicas')
})

t.test('a lease ends after its ttl: the next waiter gets it, and release says expired', async (t) => {
  const { tables } = trio(t)
  const owner = tables[0]!
  const first = await owner.acquire('L', 'a', 20)
  const second = await owner.acquire('L', 'b', 60_000)
  t.ok(second.token > first.token, 'the next waiter was granted once the first lease ran out')
  t.same(await owner.release('L', 'a', first.token), { released: false, reason: 'expired' }, 'releasing the expired lease reports it')
  t.same(await owner.release('L', 'b', second.token), { released: true }, 'the live one is released')
  t.same(await owner.release('L', 'b', second.token), { released: false, reason: 'expired' }, 'a second release finds nothing live')
  t.same(await owner.release('L', 'x', 1), { released: false, reason: 'expired' }, 'an old token is expired')
  t.same(await owner.release('other', 'x', 5), { released: false, reason: 'unknown' }, 'a name never granted is unknown')
})

t.test('stats: leases held and waiting at the owner, and grants, releases and expiries counted there only', async (t) => {
  const { tables } = trio(t)
  const [owner, replica] = tables as [LockTable, LockTable]
  const zero = { held: 0, waiting: 0, grants: 0, releases: 0, expiries: 0 }
  t.same(owner.stats(), zero)
  const a = await owner.acquire('L', 'a', 60_000)
  const b = tracked(owner.acquire('L', 'b', 20))
  await settled()
  t.same(owner.stats(), { ...zero, held: 1, waiting: 1, grants: 1 }, 'one lease held, one caller waiting')
  t.same(replica.stats(), zero, 'a replica holds a record of the lease, not the lease: it counts nothing')
  await owner.release('L', 'a', a.token)
  await b.grant
  t.same(owner.stats(), { ...zero, held: 1, grants: 2, releases: 1 }, 'released, and the waiter granted')
  const c = await owner.acquire('L', 'c', 60_000) // waits out b's 20 ms lease
  t.same(owner.stats(), { ...zero, held: 1, grants: 3, releases: 1, expiries: 1 }, "b's lease ran out")
  await owner.release('L', 'c', c.token)
  t.same(owner.stats(), { ...zero, grants: 3, releases: 2, expiries: 1 })
})

t.test('a waiter that leaves is taken out of the queue and never holds the lease', async (t) => {
  const { tables } = trio(t)
  const owner = tables[0]!
  const a = await owner.acquire('L', 'a', 60_000)
  const b = owner.acquire('L', 'b', 60_000)
  const c = owner.acquire('L', 'c', 60_000)
  t.same(await owner.release('L', 'b'), { released: false, reason: 'unknown' }, 'b leaves the queue')
  const err = await b.catch((e: unknown) => e)
  t.ok(err instanceof LockError && err.reason === 'cancelled', 'its wait rejects')
  await owner.release('L', 'a', a.token)
  const gc = await c
  t.equal(owner.known('L').holder?.id, 'c', 'c, behind b, holds it next')
  t.ok(gc.token > a.token, 'with a larger token')
})

t.test('a grant that races with its caller leaving is released, and the next waiter gets it', async (t) => {
  const tr = trio(t)
  const owner = tr.tables[0]!
  let open!: () => void
  tr.gate.promise = new Promise<void>((resolve) => (open = resolve))
  let settled = false
  const a = owner.acquire('L', 'a', 60_000).finally(() => (settled = true))
  a.catch(() => {})
  const b = owner.acquire('L', 'b', 60_000)
  // a's grant is being recorded (the gate holds it): a leaves now.
  await new Promise((resolve) => setImmediate(resolve))
  await owner.release('L', 'a')
  tr.gate.promise = undefined
  open()
  const gb = await b
  t.ok(await a.then(() => false).catch(() => true), "a's wait rejected: it never held the lease")
  t.ok(settled, 'a is settled')
  t.equal(owner.known('L').holder?.id, 'b', 'b holds the lease')
  t.ok(gb.token > 0, 'b has a token')
})

t.test('the next owner knows the live lease and the last token: no second grant, then a larger token', async (t) => {
  const tr = trio(t)
  const [old, next] = tr.tables as [LockTable, LockTable, LockTable]
  const held = await old.acquire('L', 'a', 60_000)
  // The owner dies: the next one on the ring (a replica) owns the name from now on.
  tr.owner.index = 1
  tr.down.add(0)
  const waiting = tracked(next.acquire('L', 'b', 60_000))
  await settled()
  t.notOk(waiting.granted(), 'the lease held at the dead owner is still held at the new one')
  t.equal(next.known('L').waiting, 1, 'the caller waits there')
  t.same(await next.release('L', 'a', held.token), { released: true }, 'its holder releases it at the new owner')
  t.ok((await waiting.grant).token > held.token, 'the new owner grants a larger token')
})

t.test('an owner that forgot everything learns the lease and the token from its replicas', async (t) => {
  const tr = trio(t)
  const held = await tr.tables[0]!.acquire('L', 'a', 60_000)
  // Owner 0 restarts empty: a fresh table in its place, recording on the same replicas.
  tr.tables[0]!.close()
  const replicator = { isOwner: () => true, record: (name: string, r: LockRecord) => recordOn(tr.tables.slice(1), name, r) }
  const restarted = new LockTable({ maxWaiters: 10, retryMs: 5, replicator })
  t.teardown(() => restarted.close())
  const waiting = tracked(restarted.acquire('L', 'b', 60_000))
  await settled()
  t.notOk(waiting.granted(), 'a restarted owner does not grant over a live lease its replicas know')
  t.equal(restarted.known('L').holder?.id, 'a', 'it learned the holder')
  t.same(await restarted.release('L', 'a', held.token), { released: true })
  t.ok((await waiting.grant).token > held.token, 'and grants a larger token afterwards')
})

function recordOn(tables: LockTable[], name: string, record: LockRecord): Promise<LockRecord | undefined> {
  const conflicts = tables.map((tb) => tb.record(name, record)).filter((c) => c !== undefined)
  return Promise.resolve(conflicts.sort((x, y) => y.lastToken - x.lastToken)[0])
}

t.test('a replica refuses a record older than what it knows, and says what it knows', async (t) => {
  const { tables } = trio(t)
  const replica = tables[1]!
  t.equal(replica.record('L', { holder: { id: 'a', token: 100, ttlMs: 60_000 }, lastToken: 100, ended: 0 }), undefined, 'taken')
  const refused = replica.record('L', { holder: { id: 'b', token: 50, ttlMs: 60_000 }, lastToken: 50, ended: 0 })
  t.equal(refused?.lastToken, 100, 'an older token is refused')
  t.equal(refused?.holder?.id, 'a', 'with the live lease')
  const other = replica.record('L', { holder: { id: 'c', token: 200, ttlMs: 60_000 }, lastToken: 200, ended: 0 })
  t.equal(other?.holder?.id, 'a', 'a newer lease is refused while another is live here')
  t.equal(
    replica.record('L', { holder: { id: 'c', token: 200, ttlMs: 60_000 }, lastToken: 200, ended: 100 }),
    undefined,
    'taken when it says that lease ended',
  )
  t.equal(replica.known('L').holder?.id, 'c', 'the new lease is on record')
  t.equal(replica.record('L', { holder: null, lastToken: 200, ended: 200 }), undefined, 'its release is taken')
  t.equal(replica.known('L').holder, undefined)
})

t.test('a grant waits until every replica took its record', async (t) => {
  const tr = trio(t)
  tr.unreachable.add(2)
  const waiting = tracked(tr.tables[0]!.acquire('L', 'a', 60_000))
  await settled()
  t.notOk(waiting.granted(), 'not granted while a replica cannot be reached')
  t.equal(tr.tables[1]!.known('L').holder?.id, 'a', 'even though the other replica took it')
  tr.unreachable.clear()
  await waiting.grant
  t.ok(waiting.granted(), 'granted once the record went through (tried again)')
})

t.test('a caller asking again gets the lease it holds, or keeps its place; an aborted wait leaves alone', async (t) => {
  const { tables } = trio(t)
  const owner = tables[0]!
  const held = await owner.acquire('L', 'a', 60_000)
  t.same((await owner.acquire('L', 'a', 60_000)).token, held.token, 'the holder asking again is given its own lease')
  const first = owner.acquire('L', 'b', 60_000)
  const c = tracked(owner.acquire('L', 'c', 60_000))
  const again = tracked(owner.acquire('L', 'b', 60_000))
  t.ok((await first.catch((e: unknown) => e)) instanceof LockError, 'the older wait of the same caller is dropped')
  t.equal(owner.known('L').waiting, 2, 'and the new one has its place, before c')
  const ac = new AbortController()
  const d = owner.acquire('L', 'd', 60_000, ac.signal)
  ac.abort()
  t.ok((await d.catch((e: unknown) => e)) instanceof LockError, 'an aborted wait rejects')
  t.equal(owner.known('L').waiting, 2, 'and leaves the queue, nobody else')
  await owner.release('L', 'a', held.token)
  await again.grant
  t.notOk(c.granted(), 'b, asking again, went before c')
})

t.test('only the owner grants; queue bounds; close', async (t) => {
  const tr = trio(t, 2)
  const other = tr.tables[1]!
  const misdirected = await other.acquire('L', 'a', 1000).catch((e: unknown) => e)
  t.ok(misdirected instanceof LockError && misdirected.reason === 'misdirected', 'a table that does not own the name sends callers on')
  const owner = tr.tables[0]!
  await owner.acquire('L', 'a', 60_000)
  const b = owner.acquire('L', 'b', 60_000)
  const c = owner.acquire('L', 'c', 60_000)
  const full = await owner.acquire('L', 'd', 60_000).catch((e: unknown) => e)
  t.ok(full instanceof LockError && full.reason === 'queue-full', 'past maxWaiters, queue-full')
  owner.close()
  for (const w of [b, c]) t.ok((await w.catch((e: unknown) => e)) instanceof ClosedError, 'close rejects the waiters')
  t.ok((await owner.acquire('L', 'e', 1).catch((e: unknown) => e)) instanceof ClosedError, 'and refuses new ones')
})
