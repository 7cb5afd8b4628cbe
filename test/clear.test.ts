// group.clear(): every entry of a group goes on every reachable member (main, hot and replica
// copies), ordered by the version clock: a write made before the clear and still in transit is
// refused, a value set after it stays. In-process peers on loopback, then 3 OS processes with one
// of them frozen (SIGSTOP) to be named unreachable.
import t from 'tap'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { startCluster, valueHeader, type Member } from './helpers/cluster.js'
import { eventually, loaded, startGroupCluster } from './helpers/inproc.js'

const KEYS = Array.from({ length: 30 }, (_, i) => `c${i}`)

t.test('clear drops main, hot and replica copies on every peer; the next gets load again, once each', async (t) => {
  const c = await startGroupCluster(t, 3)
  // Every peer asks for every key: owners fill, replicas get copies, the others keep hot copies (hotThreshold 1).
  for (const g of c.groups) for (const key of KEYS) t.equal(await g.get(key), loaded(key, 1))
  await eventually(() => c.groups.every((g) => g.stats().main.items + g.stats().hot.items === KEYS.length), 'every peer holds every key')
  t.ok(
    c.groups.some((g) => g.stats().hot.items > 0),
    'hot copies were made',
  )
  const result = await c.groups[1]!.clear()
  t.same([...result.acknowledged].sort(), [...c.urls].sort(), 'every member acknowledged')
  t.same(result.unreachable, [])
  for (const g of c.groups) t.match(g.stats(), { main: { items: 0 }, hot: { items: 0 } }, 'nothing left')
  t.equal(c.groups[1]!.stats().clears, 1)
  for (const g of c.groups) for (const key of KEYS) t.equal(await g.get(key), loaded(key, 2), 'loaded again')
  t.equal(c.origin.count(), KEYS.length * 2, 'one new load per key for the whole cluster')
})

t.test('a value set after the clear stays; a write from before it that arrives late is refused', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const before = await c.groups[2]!.set(key, 'before')
  await c.groups[0]!.clear()
  // The owner's copy of the old value to its replica, arriving only now (a slow PUT): refused.
  const late = await fetch(`${c.urls[1]}/_peercache/g/${key}`, {
    method: 'PUT',
    headers: { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.replica]: '1', [HEADER.version]: String(before.version) },
    body: 'before',
  })
  t.equal(late.status, 204, 'the replica answers')
  t.equal(c.groups[1]!.stats().main.items, 0, 'but keeps nothing older than the clear')
  const after = await c.groups[2]!.set(key, 'after')
  t.ok(after.version > before.version, 'the set after the clear has a newer version')
  await eventually(() => c.groups[1]!.stats().main.items === 1, 'the replica has the new value')
  for (const g of c.groups) t.equal(await g.get(key), 'after', 'every peer reads the value set after the clear')
})

t.test('a load under way during the clear reaches its caller but is cached nowhere', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  c.origin.hold()
  const waiting = c.groups[2]!.get(key)
  await c.origin.started()
  await c.groups[2]!.clear()
  c.origin.release()
  t.equal(await waiting, loaded(key, 1), 'the caller gets its value')
  for (const g of c.groups) t.match(g.stats(), { main: { items: 0 }, hot: { items: 0 } }, 'not cached')
  t.equal(await c.groups[2]!.get(key), loaded(key, 2), 'the next get loads again')
})

t.test('a clear with no epoch or an implausible one is refused and changes nothing', async (t) => {
  const c = await startGroupCluster(t, 1)
  await c.groups[0]!.get('k')
  for (const version of [undefined, 'x', String(1e15 * 1000)]) {
    const headers: Record<string, string> = { [HEADER.protocol]: String(PROTOCOL_VERSION) }
    if (version !== undefined) headers[HEADER.version] = version
    const res = await fetch(`${c.urls[0]}/_peercache/g/`, { method: 'DELETE', headers })
    t.equal(res.status, 400, `epoch ${version}: 400`)
    t.equal(res.headers.get(HEADER.error), 'bad-request')
  }
  t.equal(c.groups[0]!.stats().main.items, 1, 'still cached')
  const unknown = await fetch(`${c.urls[0]}/_peercache/nosuch/`, { method: 'DELETE', headers: { [HEADER.version]: '1' } })
  t.equal(unknown.status, 404, 'an unknown group: 404')
})

t.test('three processes: clear from one empties all; a frozen member is named unreachable', async (t) => {
  const cluster = await startCluster(t, {
    size: 3,
    groups: { g: { options: { maxBytes: 1 << 20, codec: 'string' } } },
  })
  const [m0, m1, m2] = cluster.members as [Member, Member, Member]
  for (const m of cluster.members) await m.gets('g', KEYS)
  const all = await m1.clear('g')
  t.same([...all.acknowledged].sort(), [...cluster.urls].sort(), 'every member acknowledged')
  for (const m of cluster.members) t.match(await m.stats('g'), { main: { items: 0 }, hot: { items: 0 } }, `${m.name} holds nothing`)
  // The origin changes: every get after the clear must show the new version, none an old copy.
  for (const m of cluster.members) await m.loader('g', { version: 'v2' })
  for (const m of cluster.members) {
    const outcomes = await m.gets('g', KEYS)
    t.ok(
      outcomes.every((o) => o.ok && valueHeader(o.value).v === 'v2'),
      `${m.name} reads only values loaded after the clear`,
    )
  }
  await m0.set('g', KEYS[0]!, 'set after the clear')
  for (const m of cluster.members) t.equal((await m.get('g', KEYS[0]!)).value, 'set after the clear')

  m2.stop()
  t.teardown(() => m2.cont())
  const partial = await m0.clear('g')
  m2.cont()
  t.same(partial.unreachable, [m2.url], 'the frozen member is unreachable')
  t.same([...partial.acknowledged].sort(), [m0.url, m1.url].sort())
  t.match(await m0.stats('g'), { main: { items: 0 } })
})
