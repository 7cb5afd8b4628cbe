// Compare-and-set and read-modify-write (lib/atomic.ts, decided in owner.ts): getEntry reads the
// owner's version; set with ifVersion / ifAbsent is refused with ConflictError (carrying the owner's
// version) when another write came first, and changes nothing; update() retries until it wins.
// In-process peers on loopback; the 3-process contention test is test/atomic-cluster.test.ts.
import t from 'tap'
import { ConflictError, InvalidOptionError, type Group } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { loaded, startGroupCluster } from './helpers/inproc.js'
import { startPeers } from './helpers/peers.js'

t.test('getEntry reads the owner version; ifVersion succeeds with it and fails after another write', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  // From a peer that is neither owner nor replica, then from the owner itself: the same version.
  const far = await c.groups[2]!.getEntry(key)
  t.equal(far?.value, loaded(key, 1), 'loaded at the owner')
  t.same(await c.groups[0]!.getEntry(key), far, 'the owner reads the same entry')
  const written = await c.groups[2]!.set(key, 'mine', { ifVersion: far!.version })
  t.ok(written.version > far!.version, 'the conditional set wrote a newer version')
  t.same(await c.groups[1]!.getEntry(key), { value: 'mine', version: written.version, expiresAt: 0 })
  // The same stale version again, from each peer (owner local, replica, far): refused, nothing changed.
  for (const g of c.groups) {
    const err = await g.set(key, 'stale', { ifVersion: far!.version }).catch((e) => e)
    t.ok(err instanceof ConflictError, 'ConflictError')
    t.equal(err.code, 'PEERCACHE_ERR_CONFLICT')
    t.equal(err.currentVersion, written.version, 'it carries the owner version')
    t.equal(err.group, 'g')
    t.equal(err.key, key)
  }
  for (const g of c.groups) t.equal(await g.get(key), 'mine', 'the value is unchanged everywhere')
  t.equal(c.groups[2]!.stats().conflicts, 1, 'counted where the set was made')
})

t.test('ifAbsent stores only when the owner holds nothing; its conflict names the version held', async (t) => {
  const c = await startGroupCluster(t, 3, { absentTtlMs: 60_000 })
  c.origin.value = () => undefined // the origin knows no key: absent values
  const key = c.keyOf(1, 2)
  t.equal(await c.groups[0]!.getEntry(key), undefined, 'no value: undefined')
  const first = await c.groups[0]!.set(key, 'first', { ifAbsent: true })
  t.pass('an absent value counts as none')
  const err = await c.groups[2]!.set(key, 'second', { ifAbsent: true }).catch((e) => e)
  t.ok(err instanceof ConflictError)
  t.equal(err.currentVersion, first.version)
  t.match(err.message, /expected no value, the owner holds version/)
  await c.groups[1]!.remove(key)
  await c.groups[2]!.set(key, 'second', { ifAbsent: true })
  t.equal(await c.groups[0]!.get(key), 'second', 'after a remove, ifAbsent succeeds')
})

t.test('a conditional set on a key the owner no longer holds conflicts with no current version', async (t) => {
  const c = await startGroupCluster(t, 2)
  const key = c.keyOf(0, 1)
  const { version } = await c.groups[1]!.set(key, 'v', { ttlMs: 1 })
  await new Promise((r) => setTimeout(r, 20))
  const err = await c.groups[1]!.set(key, 'w', { ifVersion: version }).catch((e) => e)
  t.ok(err instanceof ConflictError, 'expired: nothing held')
  t.equal(err.currentVersion, undefined)
})

t.test('bad conditions are InvalidOptionError and change nothing', async (t) => {
  const c = await startGroupCluster(t, 1)
  await c.groups[0]!.set('k', 'v')
  const bad = [{ ifVersion: -1 }, { ifVersion: 1.5 }, { ifVersion: 1, ifAbsent: true }, { ifAbsent: 'yes' }] as never[]
  for (const options of bad) {
    const err = await c.groups[0]!.set('k', 'x', options).catch((e) => e)
    t.ok(err instanceof InvalidOptionError, JSON.stringify(options))
  }
  t.rejects(c.groups[0]!.update('k', 'no function' as never), InvalidOptionError)
  t.rejects(
    c.groups[0]!.update('k', (v) => v ?? '', { retries: -1 }),
    InvalidOptionError,
  )
  t.equal(await c.groups[0]!.get('k'), 'v')
  t.equal(c.groups[0]!.stats().sets, 1, 'no set was made')
})

t.test('a bad x-peercache-if-version header is 400; a stale one 409 conflict with the owner version', async (t) => {
  const c = await startGroupCluster(t, 1)
  const { version } = await c.groups[0]!.set('k', 'v')
  const put = (ifVersion: string) =>
    fetch(`${c.urls[0]}/_peercache/g/k`, {
      method: 'PUT',
      headers: { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.ifVersion]: ifVersion },
      body: 'x',
    })
  t.equal((await put('nope')).status, 400)
  const stale = await put(String(version - 1))
  t.equal(stale.status, 409)
  t.equal(stale.headers.get(HEADER.error), 'conflict')
  t.equal(stale.headers.get(HEADER.version), String(version))
  t.equal((await put('absent')).status, 409, 'ifAbsent on a held key')
  t.equal(await c.groups[0]!.get('k'), 'v', 'unchanged')
  t.equal((await put(String(version))).status, 204, 'the right version is stored')
  t.equal(await c.groups[0]!.get('k'), 'x')
})

t.test('concurrent updates from 3 in-process peers lose nothing', async (t) => {
  const tp = await startPeers(t, 3)
  const groups = tp.group<number>('n', () => ({ maxBytes: 1 << 20, codec: 'json', absentTtlMs: 60_000 }))
  const runs = groups.flatMap((g: Group<number>) => Array.from({ length: 40 }, () => g.update('count', (n) => (n ?? 0) + 1)))
  const written = await Promise.all(runs)
  t.same(
    [...written].sort((a, b) => a - b),
    Array.from({ length: 120 }, (_, i) => i + 1),
    'each update wrote a different value, 1 to 120',
  )
  for (const g of groups) t.equal(await g.get('count'), 120)
  const stats = groups.map((g) => g.stats())
  t.equal(
    stats.reduce((n, s) => n + s.updates, 0),
    120,
  )
  t.equal(
    stats.reduce((n, s) => n + s.updateRetries, 0),
    stats.reduce((n, s) => n + s.conflicts, 0),
    'every conflict was retried',
  )
})

t.test('update gives up after `retries` conflicts with the last ConflictError', async (t) => {
  const c = await startGroupCluster(t, 1)
  await c.groups[0]!.set('k', 'a')
  let calls = 0
  // Each call writes the key behind update's back, so its own write always conflicts.
  const err = await c.groups[0]!.update(
    'k',
    async (v) => {
      calls++
      await c.groups[0]!.set('k', `other${calls}`)
      return `${v}!`
    },
    { retries: 2 },
  ).catch((e) => e)
  t.ok(err instanceof ConflictError)
  t.equal(calls, 3, 'one try and two retries')
  t.equal(c.groups[0]!.stats().updateRetries, 2)
})
