// Absent values (absentTtlMs): a loader's `undefined` is cached like a value, on one peer, across
// in-process peers (replicas, hot copies, set and remove), and over 3 OS processes, where a herd of
// gets for a missing key makes one origin call in the whole cluster.
import t from 'tap'
import { InvalidOptionError, InvalidValueError, PEER_DEFAULTS, Peer } from '../lib/index.js'
import { Ring } from '../lib/ring.js'
import { startCluster, type Member } from './helpers/cluster.js'
import { eventually, loaded, pastTime, startGroupCluster, total } from './helpers/inproc.js'
import { freePort } from './helpers/net.js'
import { Origin } from './helpers/origin.js'
import { findKey } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'

function soloPeer(t: TapTest): Peer {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  return peer
}

t.test('one peer: undefined from the loader is cached for absentTtlMs, then loaded again', async (t) => {
  const origin = new Origin()
  origin.value = () => undefined
  const g = soloPeer(t).group('g', { maxBytes: 1 << 20, absentTtlMs: 60_000, load: origin.loaderFor('solo') as () => Promise<undefined> })
  const herd = await Promise.all(Array.from({ length: 100 }, () => g.get('missing')))
  t.ok(
    herd.every((v) => v === undefined),
    'every get resolves undefined',
  )
  t.equal(origin.count('missing'), 1, 'one load for the herd')
  t.equal(await g.get('missing'), undefined)
  t.equal(origin.count('missing'), 1, 'the next get is a hit')
  t.match(g.stats(), { absentLoads: 1, mainHits: 1, loads: 1 })
  t.equal(g.stats().main.items, 1, 'the absent value is an entry')
  const before = Date.now()
  const other = await g.set('other', undefined)
  t.ok(
    other.expiresAt >= before + 60_000 && other.expiresAt <= Date.now() + 60_000,
    'set(key, undefined) stores an absent value for absentTtlMs',
  )
  const { expiresAt } = await g.set('missing', undefined, { ttlMs: 20 })
  // Well past it: lru-cache reads the clock at most once per ms, and a loaded machine runs that timer late.
  await pastTime(expiresAt + 100)
  t.equal(await g.get('missing'), undefined)
  t.equal(origin.count('missing'), 2, 'expired: loaded again')
})

t.test('one peer: the loader may choose the absent value ttl; set replaces it and remove drops it', async (t) => {
  const origin = new Origin()
  let found = false
  origin.value = (_key, call) => {
    if (found) return Buffer.from('found')
    call.ctx.ttlMs = 60_000
    return undefined
  }
  const g = soloPeer(t).group('g', { maxBytes: 1 << 20, absentTtlMs: 1, load: origin.loaderFor('solo') as () => Promise<undefined> })
  t.equal(await g.get('k'), undefined)
  t.equal(await g.get('k'), undefined)
  t.equal(origin.count('k'), 1, 'kept for the loader ttl (60 s), not absentTtlMs (1 ms)')
  await g.set('k', Buffer.from('set'))
  t.equal((await g.get('k'))?.toString(), 'set', 'a set replaces an absent value')
  await g.remove('k')
  found = true
  t.equal((await g.get('k'))?.toString(), 'found', 'after remove the origin is asked again')
  t.equal(origin.count('k'), 2)
})

t.test('absentTtlMs 0 (the default): undefined is an InvalidValueError and nothing is cached', async (t) => {
  const origin = new Origin()
  origin.value = () => undefined
  const g = soloPeer(t).group('g', { maxBytes: 1 << 20, load: origin.loaderFor('solo') as () => Promise<Buffer> })
  await t.rejects(g.get('k'), InvalidValueError)
  await t.rejects(g.get('k'), InvalidValueError)
  t.equal(origin.count('k'), 2, 'not cached')
  t.equal(g.stats().main.items, 0)
  await t.rejects(g.set('k', undefined as unknown as Buffer), InvalidValueError)
})

t.test('a group without a loader needs absentTtlMs; with it, it holds what set put there', async (t) => {
  const peer = soloPeer(t)
  t.throws(() => peer.group('bad', { maxBytes: 1 << 20 } as never), InvalidOptionError)
  t.throws(() => peer.group('bad', { maxBytes: 1 << 20, absentTtlMs: 1000, load: 'no' as never }), InvalidOptionError)
  t.throws(() => peer.group('bad', { maxBytes: 1 << 20, absentTtlMs: -1 }), InvalidOptionError)
  const g = peer.group('store', { maxBytes: 1 << 20, codec: 'string', absentTtlMs: 1000 })
  t.equal(await g.get('k'), undefined, 'never set: absent')
  await g.set('k', 'v')
  t.equal(await g.get('k'), 'v')
  t.equal(g.stats().absentLoads, 1)
})

t.test('three peers: an absent value is served by the owner, copied to its replica, kept as a hot copy', async (t) => {
  const c = await startGroupCluster(t, 3, { absentTtlMs: 60_000 })
  let missing = true
  c.origin.value = (key, call) => (missing ? undefined : loaded(key, c.origin.calls.indexOf(call) + 1))
  const key = c.keyOf(0, 1)
  const { others } = c.roles(key)
  const asker = c.groups[others[0]!]!
  t.equal(await asker.get(key), undefined, 'a non-owner gets undefined from the owner')
  t.equal(c.origin.count(key), 1)
  t.equal(c.origin.calls[0]!.by, 'p0', 'loaded at the owner')
  await eventually(() => c.groups[1]!.stats().replicaWrites === 1, 'the replica got its copy')
  t.equal(await c.groups[1]!.get(key), undefined, 'the replica answers from its copy')
  t.equal(await asker.get(key), undefined)
  t.equal(asker.stats().hotHits, 1, 'the asker kept a hot copy (hotThreshold 1)')
  t.equal(c.origin.count(key), 1, 'still one load in the cluster')
  // A set anywhere replaces the absent value everywhere, hot copy included.
  missing = false
  const set = await c.groups[1]!.set(key, 'now here')
  t.same(set.unreachable, [])
  for (const g of c.groups) t.equal(await g.get(key), 'now here', `${g.name} sees the set value`)
  t.equal(total(c.groups, 'loads'), 1)
})

t.test('three processes: 1000 concurrent gets of a missing key make one loader call', async (t) => {
  const cluster = await startCluster(t, {
    size: 3,
    // Generous: on a loaded machine an owner may take over a second to answer, and then the asker
    // loads itself (a get never fails because a peer is slow), which is not what this test is about.
    peer: { peerTimeoutMs: 10_000, fetchTimeoutMs: 30_000 },
    groups: {
      users: { options: { maxBytes: 1 << 20, codec: 'json', absentTtlMs: 60_000 }, loader: { delayMs: 100, absentKeys: ['nobody'] } },
    },
  })
  const members = cluster.members as [Member, Member, Member]
  const shares = [334, 333, 333]
  const outcomes = (await Promise.all(members.map((m, i) => m.gets('users', Array(shares[i]).fill('nobody'))))).flat()
  t.equal(outcomes.length, 1000)
  t.equal(outcomes.filter((o) => !o.ok).length, 0, 'no get failed')
  t.ok(
    outcomes.every((o) => o.ok && (o as { absent?: boolean }).absent === true),
    'every get resolved undefined',
  )
  const loads = await cluster.loads('users')
  t.comment(`loader calls for 1000 concurrent gets of a missing key over 3 processes: ${loads.byKey.get('nobody')}`)
  t.equal(loads.byKey.get('nobody'), 1, 'one origin load in the whole cluster')
  t.equal((await cluster.ownerOf('nobody').loads('users')).byKey['nobody'], 1, 'at the owner')
  // Set in one process: read in every other; remove: absent again after one more load.
  const other = members.find((m) => m !== cluster.ownerOf('nobody'))!
  await other.set('users', 'nobody', '{"name":"somebody"}')
  for (const m of members) t.equal((await m.get('users', 'nobody')).value, '{"name":"somebody"}', `${m.name} reads the set value`)
  await other.remove('users', 'nobody')
  for (const m of members) t.equal((await m.get('users', 'nobody')).absent, true, `${m.name} reads absent after remove`)
  t.equal((await cluster.loads('users')).byKey.get('nobody'), 2, 'one more load after the remove')
})

t.test('a group without a loader: when no holder of a key answers, a get says absent and keeps nothing', async (t) => {
  // Nothing listens at the other peer's port: its connections are refused.
  const dead = `http://127.0.0.1:${await freePort()}`
  const peer = new Peer({ self: 'http://127.0.0.1:1', peers: [dead] })
  t.teardown(() => peer.close())
  const g = peer.group('store', { maxBytes: 1 << 20, codec: 'string', absentTtlMs: 60_000, replicas: 1 })
  const ring = new Ring([peer.self, dead], PEER_DEFAULTS.vnodes)
  const key = findKey((k) => ring.owners(k, 1)[0] === dead)
  t.equal(await g.get(key), undefined, 'absent for the caller')
  t.match(g.stats(), { main: { items: 0 }, hot: { items: 0 }, absentLoads: 0 }, 'kept nowhere: the owner may hold a value')
})
