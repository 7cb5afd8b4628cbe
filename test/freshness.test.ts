// Freshness across a real cluster (in-process peers on loopback HTTP): absolute expiry decided by
// the owner and shared by every copy, set and remove seen from every peer, no resurrection of a
// value loaded before a remove or set, and peers that cannot be reached named instead of waited for.
// Roles per key: the owner, its replica (next on the ring), and the others (hot copies).
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidKeyError, InvalidOptionError, InvalidValueError, type Group } from '../lib/index.js'
import { PEER_DEFAULTS } from '../lib/defaults.js'
import { HEADER, PROTOCOL_VERSION, keyPath } from '../lib/protocol.js'
import { Ring } from '../lib/ring.js'
import { GROUP, eventually, loaded, pastTime, startGroupCluster, type GroupCluster } from './helpers/inproc.js'
import { freePort } from './helpers/net.js'
import { findKey } from './helpers/peers.js'
import { type Member, startCluster, valueHeader } from './helpers/cluster.js'

const TTL_MS = 300

/** `key` from every peer at once. */
const fromEveryPeer = (groups: Group<string>[], key: string) => Promise.all(groups.map((g) => g.get(key)))
const times = <T>(n: number, value: T) => Array.from({ length: n }, () => value)

/** Gets `key` from every peer (one at a time, so that all copies exist) and checks they agree. */
async function warm(t: Test, c: GroupCluster, key: string, expected: string): Promise<void> {
  for (const g of c.groups) t.equal(await g.get(key), expected, 'warm')
}

t.test("group ttlMs: a hot copy expires at the owner's absolute time; one reload serves owner and asker", async (t) => {
  const c = await startGroupCluster(t, 3, { ttlMs: TTL_MS })
  // Reloaded values live long, so that a slow machine cannot expire them again mid-test.
  const first = c.origin.value
  c.origin.value = (key, call) => {
    const value = first(key, call)
    if (value !== loaded(key, 1)) call.ctx.ttlMs = 60_000
    return value
  }
  const key = c.keyOf(0, 1)
  const [owner, replica, asker] = [c.groups[0]!, c.groups[1]!, c.groups[2]!]
  t.equal(await owner.get(key), loaded(key, 1))
  const deadline = Date.now() + TTL_MS // the owner's expiry is at most this: its load ended before now
  t.equal(c.origin.calls[0]!.ctx.ttlMs, TTL_MS, "the loader saw the group's ttlMs in ctx.ttlMs")

  // The asker copies the value a third of the TTL later: a copy that counted its own TTL from
  // arrival would outlive the owner's entry by that much.
  await sleep(TTL_MS / 3)
  t.equal(await asker.get(key), loaded(key, 1), 'the asker copied the value before it expired (else this machine is too slow for the test)')
  t.equal(asker.stats().hot.items, 1, 'as a hot copy')
  await eventually(() => replica.stats().replicaWrites === 1, 'the replica has its copy')

  await pastTime(deadline)
  t.equal(await asker.get(key), loaded(key, 2), "past the owner's expiry the asker's copy is gone: reloaded at the owner")
  t.equal(await owner.get(key), loaded(key, 2), 'the owner serves the reload')
  t.equal(await replica.get(key), loaded(key, 2), 'so does the replica')
  t.equal(c.origin.count(), 2, 'exactly one reload in the cluster')
  t.equal(owner.stats().main.expirations, 1, 'the owner counted the expiry')
  t.equal(replica.stats().main.expirations, 1, 'the replica counted the expiry')
  t.equal(asker.stats().hot.expirations, 1, 'the asker counted the expiry of its hot copy')
})

// Per key, from the loader: a TTL of its own, 0 (never), or the group's, untouched.
const loaderTtlCases = [
  {
    name: 'no group ttlMs: the loader gives one key a ttl',
    groupTtl: undefined,
    setByLoader: { short: TTL_MS } as Record<string, number>,
    untouched: 'plain',
    expiring: 'short',
  },
  {
    name: 'group ttlMs: the loader lengthens one key, makes one never expire, leaves one',
    groupTtl: TTL_MS,
    setByLoader: { long: 60_000, never: 0 } as Record<string, number>,
    untouched: 'inherits',
    expiring: 'inherits',
  },
]
for (const tc of loaderTtlCases) {
  t.test(`per-key ttl from the loader (ctx.ttlMs): ${tc.name}`, async (t) => {
    const c = await startGroupCluster(t, 3, tc.groupTtl === undefined ? {} : { ttlMs: tc.groupTtl })
    const first = c.origin.value
    c.origin.value = (key, call) => {
      t.equal(call.ctx.ttlMs, tc.groupTtl, `ctx.ttlMs starts as the group's ttlMs (${key})`)
      const value = first(key, call)
      if (value === loaded(key, 1) && Object.hasOwn(tc.setByLoader, key)) call.ctx.ttlMs = tc.setByLoader[key]
      return value
    }
    const keys = [...new Set([...Object.keys(tc.setByLoader), tc.untouched, tc.expiring])]
    // Each key from a peer that is neither its owner nor its replica: the copy there is a hot copy.
    const asker = (key: string) => c.groups[c.roles(key).others[0]!]!
    for (const key of keys) t.equal(await asker(key).get(key), loaded(key, 1))
    const deadline = Date.now() + TTL_MS
    await pastTime(deadline)
    for (const key of keys) {
      const expected = key === tc.expiring ? loaded(key, 2) : loaded(key, 1)
      t.same(
        await fromEveryPeer(c.groups, key),
        times(3, expected),
        `${key}: ${key === tc.expiring ? 'expired and reloaded once' : 'still cached'} on every peer`,
      )
      t.equal(c.origin.count(key), key === tc.expiring ? 2 : 1, `${key}: origin loads`)
    }
  })
}

t.test('set from a non-owner, the owner and the replica: every peer returns the new value, no origin load', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  await warm(t, c, key, loaded(key, 1))
  for (const [role, setter] of [
    ['a non-owner', 2],
    ['the owner', 0],
    ['the replica', 1],
  ] as const) {
    const result = await c.groups[setter]!.set(key, `set by ${role}`)
    t.equal(result.owner, c.urls[0], `set by ${role}: stored at the owner`)
    t.same(result.unreachable, [], 'every peer was reached')
    t.equal(result.expiresAt, 0, 'no ttl: never expires')
    t.same(await fromEveryPeer(c.groups, key), times(3, `set by ${role}`), `set by ${role}: seen by every peer`)
    t.same(await fromEveryPeer(c.groups, key), times(3, `set by ${role}`), 'and again (from the copies it left)')
  }
  t.equal(c.origin.count(), 1, 'only the first value came from the origin')
  t.same(
    c.groups.map((g) => g.stats().sets),
    [1, 1, 1],
    'stats: one set per caller',
  )
  t.equal(c.groups[2]!.stats().hot.items, 1, 'the non-owner holds a hot copy of the set value')
})

t.test("set with ttlMs: every copy expires at the owner's time, then one origin load", async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  await warm(t, c, key, loaded(key, 1))
  const before = Date.now()
  const result = await c.groups[2]!.set(key, 'short-lived', { ttlMs: TTL_MS })
  t.ok(
    result.expiresAt >= before + TTL_MS && result.expiresAt <= Date.now() + TTL_MS,
    "expiresAt: the owner's clock when it stored the value, plus the ttl",
  )
  t.same(await fromEveryPeer(c.groups, key), times(3, 'short-lived'), 'seen everywhere before expiry')
  await pastTime(result.expiresAt)
  t.same(await fromEveryPeer(c.groups, key), times(3, loaded(key, 2)), 'after expiry every peer gets a fresh load')
  t.equal(c.origin.count(), 2, 'one origin load for the whole cluster')
})

t.test("set without ttlMs takes the group's ttlMs; ttlMs: 0 never expires", async (t) => {
  const c = await startGroupCluster(t, 3, { ttlMs: TTL_MS })
  const before = Date.now()
  const byDefault = await c.groups[2]!.set('a', 'default ttl')
  t.ok(byDefault.expiresAt >= before + TTL_MS && byDefault.expiresAt <= Date.now() + TTL_MS, "the group's ttlMs, counted by the owner")
  t.equal((await c.groups[2]!.set('b', 'forever', { ttlMs: 0 })).expiresAt, 0)
  await t.rejects(c.groups[2]!.set('c', 'x', { ttlMs: -1 }), InvalidOptionError, 'a negative ttl is refused')
})

t.test('remove from a non-owner, the owner and the replica: every peer then reloads, once for the cluster', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  let loads = 0
  for (const [role, remover] of [
    ['a non-owner', 2],
    ['the owner', 0],
    ['the replica', 1],
  ] as const) {
    await warm(t, c, key, loaded(key, ++loads))
    const result = await c.groups[remover]!.remove(key)
    t.same([...result.acknowledged].sort(), [...c.urls].sort(), `remove by ${role}: every peer acknowledged`)
    t.same(result.unreachable, [])
    t.same(await fromEveryPeer(c.groups, key), times(3, loaded(key, loads + 1)), `remove by ${role}: every peer gets a fresh load`)
    t.equal(c.origin.count(), loads + 1, 'one origin load for the whole cluster')
  }
  t.same(
    c.groups.map((g) => g.stats().removes),
    [1, 1, 1],
    'stats: one remove per caller',
  )
})

/**
 * A slow load at the owner (peer 0) with two peers waiting on it: the replica (peer 1) and a
 * non-owner (peer 2). `write` runs on peer 3 while the load is held; `releaseWhen` decides when
 * the load may finish. Returns what the waiters got.
 */
async function midLoad(
  c: GroupCluster,
  key: string,
  write: () => Promise<unknown>,
  releaseWhen: 'write resolved' | 'owner dropped the flight',
): Promise<string[]> {
  c.origin.hold()
  const waiting = [c.groups[1]!.get(key), c.groups[2]!.get(key)]
  await c.origin.started(1)
  await eventually(() => c.groups[0]!.stats().dedupedLoads === 1, "both waiters joined the owner's load")
  const written = write()
  if (releaseWhen === 'owner dropped the flight') await eventually(() => c.groups[0]!.stats().inFlight === 0, 'the owner detached the load')
  else await written
  c.origin.release()
  await written
  return Promise.all(waiting)
}

for (const releaseWhen of ['write resolved', 'owner dropped the flight'] as const) {
  t.test(`remove during a slow load (released when the ${releaseWhen}): nobody returns the old value afterwards`, async (t) => {
    const c = await startGroupCluster(t, 4)
    const key = c.keyOf(0, 1)
    const waited = await midLoad(c, key, () => c.groups[3]!.remove(key), releaseWhen)
    t.same(waited, [loaded(key, 1), loaded(key, 1)], 'the waiters get the value they asked for')
    t.same(await fromEveryPeer(c.groups, key), times(4, loaded(key, 2)), 'after the remove every peer gets a fresh load')
    t.same(await fromEveryPeer(c.groups, key), times(4, loaded(key, 2)), 'and keeps it: the late load was cached nowhere')
    t.equal(c.origin.count(), 2, 'one new origin load')
  })
}

// The replica's own fetch is not detached by the set (the set skips the key's owners when it drops
// old copies), so only versions keep the late result out: the load's must be older than the set's.
t.test('set during a slow load: the late load result overwrites the set value nowhere', async (t) => {
  const c = await startGroupCluster(t, 4)
  const key = c.keyOf(0, 1)
  const waited = await midLoad(c, key, () => c.groups[3]!.set(key, 'set value'), 'write resolved')
  t.same(waited, [loaded(key, 1), loaded(key, 1)], 'the waiters get the value they asked for')
  const seen = await fromEveryPeer(c.groups, key)
  for (const [i, value] of seen.entries()) t.equal(value, 'set value', `peer ${i} returns the set value`)
  t.equal(c.origin.count(), 1, 'no origin load after the set')
})

/** Adds a member where nothing listens (no process, so it never said it left) and a key it owns. */
async function addDeadOwner(c: GroupCluster): Promise<{ dead: string; ring: Ring; key: string }> {
  const dead = `http://127.0.0.1:${await freePort()}`
  const members = [...c.urls, dead]
  for (const p of c.peers) p.setPeers(members)
  const ring = new Ring(members)
  return { dead, ring, key: findKey((k) => ring.owners(k, 1)[0] === dead) }
}

t.test('remove with a peer down resolves and names it', async (t) => {
  t.test('a closed peer', async (t) => {
    const c = await startGroupCluster(t, 3)
    const key = c.keyOf(0, 1)
    await warm(t, c, key, loaded(key, 1))
    await c.peers[2]!.close()
    const result = await c.groups[1]!.remove(key)
    t.same(result.unreachable, [c.urls[2]], 'the closed peer is named')
    t.same([...result.acknowledged].sort(), [c.urls[0], c.urls[1]].sort())
    t.same(await fromEveryPeer(c.groups.slice(0, 2), key), times(2, loaded(key, 2)), 'the live peers reload')
  })
  t.test('a URL where nothing listens, owning the key', async (t) => {
    const c = await startGroupCluster(t, 3)
    const { dead, key } = await addDeadOwner(c)
    await warm(t, c, key, loaded(key, 1))
    const result = await c.groups[0]!.remove(key)
    t.same(result.unreachable, [dead], 'the dead URL is named')
    t.same([...result.acknowledged].sort(), [...c.urls].sort(), 'every live peer acknowledged')
    t.same(await fromEveryPeer(c.groups, key), times(3, loaded(key, 2)), 'the live peers reload')
  })
})

// An owner the PUT failed at may only be cut off: it is sent the drop too, and named when it fails.

t.test('set when the owner is unreachable goes to its replica', async (t) => {
  t.test('the owner closed', async (t) => {
    const c = await startGroupCluster(t, 3)
    const key = c.keyOf(0, 1)
    await warm(t, c, key, loaded(key, 1))
    await c.peers[0]!.close()
    const result = await c.groups[2]!.set(key, 'new')
    t.equal(result.owner, c.urls[1], 'stored by the replica')
    t.same(result.unreachable, [c.urls[0]], 'the closed owner is named')
    t.same(await fromEveryPeer(c.groups.slice(1), key), times(2, 'new'), 'the live peers return the new value')
    t.equal(c.origin.count(), 1, 'no origin load')
  })
  t.test('the owner is a URL where nothing listens', async (t) => {
    const c = await startGroupCluster(t, 3)
    const { dead, ring, key } = await addDeadOwner(c)
    const replica = c.urls.indexOf(ring.owners(key, 2)[1]!)
    const setter = c.groups[(replica + 1) % 3]!
    const result = await setter.set(key, 'new')
    t.equal(result.owner, c.urls[replica], 'stored by the replica')
    t.same(result.unreachable, [dead], 'the owner it could not reach is named (its old copy, if it has one, was not dropped)')
    t.same(await fromEveryPeer(c.groups, key), times(3, 'new'), 'every live peer returns the new value')
    t.equal(c.origin.count(), 0, 'no origin load')
  })
})

t.test('set and remove with bad input throw and change nothing', async (t) => {
  const c = await startGroupCluster(t, 3)
  const groups = c.group<Buffer>('bytes', () => ({
    maxBytes: 1 << 20,
    hotThreshold: 1,
    load: async (key: string) => Buffer.from(`old ${key}`),
  }))
  const key = c.keyOf(0, 1)
  const old = () => Promise.all(groups.map(async (g) => String(await g.get(key))))
  t.same(await old(), times(3, `old ${key}`))
  for (const g of groups) {
    await t.rejects(g.set('', Buffer.from('x')), InvalidKeyError, 'set of an empty key')
    await t.rejects(g.remove(''), InvalidKeyError, 'remove of an empty key')
    const err = await g.set(key, 'not bytes' as unknown as Buffer).catch((e: unknown) => e)
    t.type(err, InvalidValueError, "a string given to a bytes group's set")
    t.match(err, { group: 'bytes', key }, 'the error names the group and the key')
  }
  t.same(await old(), times(3, `old ${key}`), 'every peer still returns the old value')
})

// An oversized value is the caller's mistake, not a peer failing: no peer may be suspected for it,
// and the owner must not drop its value for one it cannot store.
t.test('set of a value larger than the group can cache: refused alike from every caller, nothing changes', async (t) => {
  const suspected: string[] = [] // peers any peer stopped trusting, and why
  const c = await startGroupCluster(
    t,
    3,
    { maxBytes: 10_000 },
    { onPeerStateChange: (peer, _from, to, why) => suspected.push(`${peer} ${to} (${why})`) },
  )
  const key = c.keyOf(0, 1)
  await warm(t, c, key, loaded(key, 1))
  for (const [role, setter] of [
    ['a non-owner', 2],
    ['the owner', 0],
  ] as const) {
    const err = await c.groups[setter]!.set(key, 'x'.repeat(20_000)).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.type(err, InvalidValueError, `from ${role}: rejected as an invalid value`)
    t.same(suspected, [], `from ${role}: no peer counted as failed`)
    t.same(await fromEveryPeer(c.groups, key), times(3, loaded(key, 1)), `from ${role}: every peer still has the old value`)
  }
})

/**
 * A replica copy sent by hand to `url`, as an owner whose clock runs `aheadMs` ahead of this
 * machine's would send it: its version is that owner's wall clock in µs. Returns the HTTP status.
 */
async function copyFromAheadOwner(url: string, key: string, value: string, aheadMs: number): Promise<number> {
  const headers = {
    [HEADER.protocol]: String(PROTOCOL_VERSION),
    [HEADER.replica]: '1',
    [HEADER.version]: String((Date.now() + aheadMs) * 1000),
  }
  const res = await fetch(`${url}${keyPath(PEER_DEFAULTS.basePath, GROUP, key)}`, { method: 'PUT', headers, body: value })
  return res.status
}

// Versions are a Lamport clock per store: a new owner holding a copy from a clock-ahead previous owner
// still versions its own writes above it. 4 s ahead: within the 5 s a version may run ahead of the
// receiver's clock (further ahead it is refused, 400: test/security.test.ts).

t.test('clock skew between owners: a set at the new owner wins over a copy from an old owner whose clock ran ahead', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  t.equal(await copyFromAheadOwner(c.urls[1]!, key, 'from the old owner', 4000), 204, 'the replica took the copy')
  await c.peers[0]!.close() // the replica is the key's owner from now on
  const result = await c.groups[2]!.set(key, 'set at the new owner')
  t.equal(result.owner, c.urls[1], 'stored at the new owner')
  t.same(await fromEveryPeer(c.groups.slice(1), key), times(2, 'set at the new owner'), 'every live peer returns the set value')
})

// The tombstone takes the ahead version; the owner's reloads must still be versioned above it and cached.

t.test('clock skew between owners: after a remove of a copy from a clock-ahead owner, the key is cached again', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  t.equal(await copyFromAheadOwner(c.urls[0]!, key, 'from a previous owner', 4000), 204, 'the owner took the copy')
  await c.groups[2]!.remove(key)
  for (let i = 0; i < 3; i++) t.equal(await c.groups[0]!.get(key), loaded(key, 1), `get ${i + 1} at the owner: the first reload, cached`)
  t.equal(c.origin.count(), 1, 'one origin load')
})

// The same promises between OS processes (test/fixtures/member.mjs over ../dist: build first).
t.test('OS processes', async (t) => {
  const groups = { g: { options: { maxBytes: 1 << 20, codec: 'string' as const, hotThreshold: 1 } } }
  /** The loader version each member's value of `key` was made by (or the set value itself). */
  const versions = async (members: Member[], key: string) =>
    Promise.all(
      members.map(async (m) => {
        const { value } = await m.get('g', key)
        return value.startsWith('{') ? valueHeader(value).v : value
      }),
    )

  const cluster = await startCluster(t, { size: 3, groups })

  t.test('remove and set reach every member; one reload for the cluster', async (t) => {
    const key = 'os-key'
    const members = cluster.members
    t.same(await versions(members, key), times(3, 'v1'), 'warm: every member has v1')
    await Promise.all(members.map((m) => m.loader('g', { version: 'v2' })))
    const removed = (await members[1]!.remove('g', key)) as { unreachable: string[] }
    t.same(removed.unreachable, [])
    t.same(await versions(members, key), times(3, 'v2'), 'after the remove every member has the reload')
    t.equal((await cluster.loads('g')).byKey.get(key), 2, 'one reload for the cluster')
    await members[2]!.set('g', key, 'set between processes')
    t.same(await versions(members, key), times(3, 'set between processes'), 'after the set every member has the set value')
    t.equal((await cluster.loads('g')).byKey.get(key), 2, 'no load for the set')
  })

  /** Three members, the key's replica frozen (SIGSTOP: it accepts connections, answers nothing). */
  async function frozenReplica(t: Test, key: string) {
    const cluster = await startCluster(t, { size: 3, groups, peer: { fetchTimeoutMs: 1500, peerTimeoutMs: 500 } })
    const [owner, replica] = cluster
      .ring()
      .owners(key, 2)
      .map((url) => cluster.members.find((m) => m.url === url)!) as [Member, Member]
    const asker = cluster.members.find((m) => m !== owner && m !== replica)!
    t.same(await versions([owner, replica, asker], key), times(3, 'v1'), 'warm')
    replica.stop()
    t.teardown(() => replica.cont())
    return { owner, replica, asker }
  }

  t.test('with the replica frozen, set and remove resolve and name it', async (t) => {
    const key = 'frozen-key'
    const { owner, replica, asker } = await frozenReplica(t, key)
    // The owner's first attempt at the frozen replica: its copy of the set value fails.
    const set = (await owner.set('g', key, 'set while frozen')) as { owner: string; unreachable: string[] }
    t.same(set.unreachable, [replica.url], 'set named the replica it could not update')
    t.same(await versions([owner, asker], key), times(2, 'set while frozen'), 'the members that answer have the set value')
    const removed = (await asker.remove('g', key)) as { unreachable: string[]; acknowledged: string[] }
    t.same(removed.unreachable, [replica.url], 'remove named the frozen member')
    t.same(removed.acknowledged.sort(), [owner.url, asker.url].sort(), 'the others acknowledged')
    t.same(await versions([owner, asker], key), times(2, 'v1'), 'the members that answer reload')
  })

  t.test('with the replica frozen, a set from another member is stored by the (healthy) owner', async (t) => {
    const key = 'frozen-key'
    const { owner, asker } = await frozenReplica(t, key)
    // The owner's copy to the frozen replica must give up (peerTimeoutMs) before the caller gives up
    // on the owner (fetchTimeoutMs): else the caller stores the value itself, or rejects although
    // the owner stored it.
    const outcome = await asker.set('g', key, 'set while frozen').then(
      (r) => (r as { owner: string }).owner,
      (err: Error) => err.message,
    )
    t.equal(outcome, owner.url, 'the owner stored it and set() said so')
    t.same(await versions([owner, asker], key), times(2, 'set while frozen'), 'the members that answer agree on the set value')
  })

  t.test('a DELETE with an empty key is a bad request, not a crash', async (t) => {
    const member = cluster.members[0]!
    const answer = await fetch(`${member.url}/_peercache/g/`, { method: 'DELETE' }).then(
      (r) => r.status,
      (err: Error) => err.message,
    )
    t.equal(answer, 400, 'answered 400')
    t.equal((await member.get('g', 'after-bad-delete')).value.startsWith('{'), true, 'the member still serves gets')
  })
})

t.test('staleWhileRevalidateMs: after expiry the old value comes back at once, and one refresh replaces it everywhere', async (t) => {
  const c = await startGroupCluster(t, 3, { ttlMs: 300, staleWhileRevalidateMs: 60_000 })
  const key = c.keyOf(0, 1)
  const asker = c.groups[2]!
  t.equal(await c.groups[0]!.get(key), loaded(key, 1), 'the owner loads')
  t.equal(await asker.get(key), loaded(key, 1), 'the asker fetches (and keeps a hot copy: hotThreshold 1)')
  await pastTime(Date.now() + 350)
  // Past expiry, inside the grace: both return the old value without waiting, and refresh once.
  t.equal(await c.groups[0]!.get(key), loaded(key, 1), 'the owner returns the stale value')
  t.equal(await asker.get(key), loaded(key, 1), 'so does the asker')
  await eventually(() => c.origin.count() === 2, 'one refresh load')
  await eventually(() => c.groups[0]!.stats().loads === 2 && asker.stats().peerLoads >= 2, 'the refresh reached the asker')
  t.equal(await c.groups[0]!.get(key), loaded(key, 2), 'the owner now has the new value')
  t.equal(await asker.get(key), loaded(key, 2), 'and so has the asker')
  t.equal(c.origin.count(), 2, 'one origin load for the refresh, cluster-wide')
  t.ok(c.groups[0]!.stats().staleHits >= 1 && asker.stats().staleHits >= 1, 'stale hits counted')
})

t.test('without staleWhileRevalidateMs an expired value is never returned', async (t) => {
  const c = await startGroupCluster(t, 2, { ttlMs: 200 })
  const key = c.keyOf(0, 1)
  t.equal(await c.groups[0]!.get(key), loaded(key, 1))
  await pastTime(Date.now() + 250)
  t.equal(await c.groups[0]!.get(key), loaded(key, 2), 'the get waits for the new value')
  t.equal(c.groups[0]!.stats().staleHits, 0)
})
