// Mirrors lib/owner.ts: OwnerSide's answers called directly on three real peers (loopback): peek, serve, put as owner/replica/misdirected, conditions, drop, clear, expiry().
import t from 'tap'
import { ConflictError, InvalidKeyError, InvalidValueError } from '../lib/errors.js'
import { expiry, MisdirectedError } from '../lib/owner.js'
import { startGroupCluster } from './helpers/inproc.js'

const signal = () => new AbortController().signal

t.test('peek: the fresh cached entry only, never a load; each peek and each miss counted', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const side = c.groups[0]!.ownerSide
  const before = c.groups[0]!.stats()
  t.equal(side.peek(key), undefined, 'nothing cached')
  t.equal(c.origin.count(), 0, 'no load')
  await c.groups[0]!.set(key, 'v')
  t.equal(side.peek(key)?.value, 'v')
  const after = c.groups[0]!.stats()
  t.equal(after.serverRequests - before.serverRequests, 2)
  t.equal(after.serverMisses - before.serverMisses, 1)
  t.throws(() => side.peek(''), InvalidKeyError, 'a bad key')
})

t.test('serve: a cached entry at once (not a promise); else a load here, even at a peer that does not own the key', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const other = c.roles(key).others[0]!
  const side = c.groups[other]!.ownerSide
  const served = side.serve(key, signal)
  t.ok(served instanceof Promise, 'a miss: a promise of a load')
  t.equal((await served).value, `${key}@1`)
  t.same(
    c.origin.calls.map((call) => call.by),
    [`p${other}`],
    'loaded by this peer, never fetched from the owner (no bouncing between peers that disagree)',
  )
  const again = side.serve(key, () => {
    throw new Error('no signal is needed for a cached entry')
  })
  t.notOk(again instanceof Promise, 'cached: the entry itself')
  t.equal((again as { value: string }).value, `${key}@1`)
  t.throws(() => side.serve('\ud800', signal), InvalidKeyError)
})

t.test('serve: a failed load rejects and is counted as a server error', async (t) => {
  const c = await startGroupCluster(t, 3)
  c.origin.value = () => {
    throw new Error('db down')
  }
  const key = c.keyOf(0, 1)
  const before = c.groups[0]!.stats().serverErrors
  await t.rejects(Promise.resolve(c.groups[0]!.ownerSide.serve(key, signal)), { name: 'LoadError', message: /db down/ })
  t.equal(c.groups[0]!.stats().serverErrors - before, 1)
})

t.test('put as a replica: stored with the owner version and expiry; refused where the key is not held', async (t) => {
  const c = await startGroupCluster(t, 4)
  const key = c.keyOf(0, 1)
  const { replica, others } = c.roles(key)
  const version = Date.now() * 1000
  const expiresAt = Date.now() + 600_000
  const stored = await c.groups[replica]!.ownerSide.put(key, Buffer.from('copy'), { replica: true, version, expiresAt })
  t.same(stored, { version, expiresAt, unreachable: [] })
  t.match(c.groups[replica]!.ownerSide.peek(key), { value: 'copy', version, expiresAt })
  // One place past the replicas is accepted for a copy (a leaving owner's hand-off), two places is not.
  const next = others[0]!
  const far = others[1]!
  await c.groups[next]!.ownerSide.put(key, Buffer.from('handed off'), { replica: true, version, expiresAt })
  t.equal(c.groups[next]!.ownerSide.peek(key)?.value, 'handed off', 'one place further: kept')
  const err = await c.groups[far]!.ownerSide.put(key, Buffer.from('x'), { replica: true, version, expiresAt }).catch((e) => e)
  t.ok(err instanceof MisdirectedError, 'two places further: MisdirectedError')
  t.equal((err as MisdirectedError).code, 'PEERCACHE_ERR_MISDIRECTED')
  t.equal(c.groups[far]!.ownerSide.peek(key), undefined, 'nothing stored there')
  const set = await c.groups[next]!.ownerSide.put(key, Buffer.from('x'), { replica: false, ttlMs: undefined }).catch((e) => e)
  t.ok(set instanceof MisdirectedError, 'a set is kept only by the owner or a replica, not one place further')
})

t.test('put of an absent value to a group without absentTtlMs: InvalidValueError, nothing stored', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const side = c.groups[0]!.ownerSide
  await t.rejects(side.put(key, Buffer.alloc(0), { replica: false, ttlMs: undefined, absent: true }), InvalidValueError)
  await t.rejects(side.put(key, Buffer.alloc(0), { replica: true, version: 1, expiresAt: 0, absent: true }), InvalidValueError)
  t.equal(side.peek(key), undefined)
})

t.test('put as the owner: a new, larger version, the ttl counted here, and the value on the replica before it resolves', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const side = c.groups[0]!.ownerSide
  const first = await side.put(key, Buffer.from('one'), { replica: false, ttlMs: undefined })
  const before = Date.now()
  const second = await side.put(key, Buffer.from('two'), { replica: false, ttlMs: 60_000 })
  t.ok(second.version > first.version, 'versions increase')
  t.equal(first.expiresAt, 0, 'no ttl: never expires')
  t.ok(second.expiresAt >= before + 60_000 && second.expiresAt <= Date.now() + 60_000, 'expiry = now + ttl at the owner')
  t.same(second.unreachable, [])
  t.match(c.groups[1]!.ownerSide.peek(key), { value: 'two', version: second.version }, 'the replica has it already')
})

t.test('conditions: ifAbsent and ifVersion checked against what the owner holds; a conflict stores nothing', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const side = c.groups[0]!.ownerSide
  const made = await side.put(key, Buffer.from('first'), { replica: false, ttlMs: undefined, condition: { ifAbsent: true } })
  const taken = await side
    .put(key, Buffer.from('again'), { replica: false, ttlMs: undefined, condition: { ifAbsent: true } })
    .catch((e) => e)
  t.ok(taken instanceof ConflictError, 'ifAbsent on a held key')
  t.equal((taken as ConflictError).currentVersion, made.version, 'the conflict names the version held')
  const stale = await side
    .put(key, Buffer.from('x'), { replica: false, ttlMs: undefined, condition: { ifVersion: made.version - 1 } })
    .catch((e) => e)
  t.ok(stale instanceof ConflictError, 'ifVersion of an older version')
  t.equal(side.peek(key)?.value, 'first', 'neither conflict changed the value')
  const next = await side.put(key, Buffer.from('second'), { replica: false, ttlMs: undefined, condition: { ifVersion: made.version } })
  t.ok(next.version > made.version, 'ifVersion of the version held: stored')
  t.equal(side.peek(key)?.value, 'second')
})

t.test('drop: copies older than `before` only; with no `before`, everything, and a tombstone refusing older copies', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const side = c.groups[1]!.ownerSide // the replica
  const version = Date.now() * 1000
  await side.put(key, Buffer.from('copy'), { replica: true, version, expiresAt: 0 })
  side.drop(key, version)
  t.equal(side.peek(key)?.value, 'copy', 'a drop of copies before this very version keeps it')
  side.drop(key, version + 1)
  t.equal(side.peek(key), undefined, 'a drop past it removes it')
  await side.put(key, Buffer.from('again'), { replica: true, version: version + 5, expiresAt: 0 })
  const tombstone = side.drop(key)
  t.ok(tombstone >= version + 5, 'the tombstone is at least the version it dropped')
  await side.put(key, Buffer.from('late copy'), { replica: true, version: version + 5, expiresAt: 0 })
  t.equal(side.peek(key), undefined, 'a copy no newer than the tombstone is not brought back')
  t.throws(() => side.drop(''), InvalidKeyError)
})

t.test('clear and dropAll empty the caches', async (t) => {
  const c = await startGroupCluster(t, 3)
  const side = c.groups[0]!.ownerSide
  const keys = [c.keyOf(0, 1, 'a'), c.keyOf(0, 2, 'b')]
  for (const key of keys) await side.put(key, Buffer.from('v'), { replica: false, ttlMs: undefined })
  const epoch = Date.now() * 1000
  t.ok(side.clear(epoch) >= epoch, 'the cleared line covers the epoch')
  t.same(
    keys.map((k) => side.peek(k)),
    [undefined, undefined],
  )
  await side.put(keys[0]!, Buffer.from('w'), { replica: false, ttlMs: undefined })
  t.equal(side.peek(keys[0]!)?.value, 'w', 'a set after the clear is kept (a newer version)')
  side.dropAll()
  t.equal(side.peek(keys[0]!), undefined, 'dropAll drops it')
})

t.test('expiry(): 0 for no ttl, 0, negative or NaN; now + ttl otherwise', async (t) => {
  t.same([expiry(undefined), expiry(0), expiry(-5), expiry(Number.NaN)], [0, 0, 0, 0])
  const before = Date.now()
  const at = expiry(1500)
  t.ok(at >= before + 1500 && at <= Date.now() + 1500)
})
