// Change events (lib/events.ts): what each process applies (a set at the owner, a replica's copy of
// it, the drops everywhere else, a remove, an expiry, an eviction) reaches its listeners per key in
// version order, at most once, through a bounded queue. In-process peers on loopback; the 3-process
// test is test/events-cluster.test.ts.
import { once } from 'node:events'
import t from 'tap'
import { BoundedQueue, type ChangeEvent, ChangeEvents } from '../lib/events.js'
import { type Group, InvalidOptionError } from '../lib/index.js'
import { zeroCounters } from '../lib/options.js'
import { settledWithin } from './helpers/bound.js'
import { eventually, pastTime, startGroupCluster } from './helpers/inproc.js'

/** Every event each group's listener got, in the order it got them. */
function listen(groups: Group<string>[]): ChangeEvent[][] {
  return groups.map((g) => {
    const seen: ChangeEvent[] = []
    g.on('change', (e) => {
      seen.push(e)
    })
    return seen
  })
}

t.test('every peer hears every set, remove and expiry, whoever made it, in version order', async (t) => {
  const c = await startGroupCluster(t, 3)
  const seen = listen(c.groups)
  const key = c.keyOf(0, 1) // owner p0, replica p1, p2 neither: each hears of a set another way
  const first = await c.groups[2]!.set(key, 'a')
  const second = await c.groups[1]!.set(key, 'b')
  await c.groups[0]!.remove(key)
  const third = await c.groups[2]!.set(key, 'c', { ttlMs: 30 })
  await pastTime(third.expiresAt)
  await eventually(() => seen.every((s) => s.length === 5), 'the expiry reached every peer')
  const tombstone = seen[0]![2]!.version
  for (const [i, s] of seen.entries()) {
    t.same(
      s.map((e) => [e.kind, e.version, e.origin]),
      [
        ['set', first.version, c.urls[2]],
        ['set', second.version, c.urls[1]],
        ['remove', tombstone, c.urls[0]],
        ['set', third.version, c.urls[2]],
        ['expire', third.version, c.urls[i]],
      ],
      `p${i}: every change, with the owner's versions, in order`,
    )
    t.equal(s[3]!.expiresAt, third.expiresAt, 'a set names its expiry')
    t.ok(
      s.every((e) => e.key === key && e.group === 'g'),
      'key and group',
    )
  }
  t.ok(first.version < second.version && second.version < tombstone && tombstone < third.version, 'versions grow')
})

t.test('events are per key in version order and at most once; an expiry follows only the latest set', async (t) => {
  const events = new ChangeEvents('g', 'http://me', 100, zeroCounters())
  const seen: string[] = []
  const off = events.subscribe((e) => {
    seen.push(`${e.kind}@${e.version}`)
  })
  events.note('k', 'set', 10, 'x')
  events.note('k', 'set', 10, 'x') // the same set by another path (a drop and a replica copy)
  events.note('k', 'set', 5, 'x') // older, arriving late
  events.note('k', 'expire', 10, 'x')
  events.note('k', 'evict', 10, 'x') // already ended
  events.note('k', 'remove', 12, 'x')
  events.note('k', 'expire', 10, 'x')
  events.note('other', 'set', 1, 'x') // another key has its own order
  await new Promise((r) => setImmediate(r))
  t.same(seen, ['set@10', 'expire@10', 'remove@12', 'set@1'])
  off()
  events.note('k', 'set', 20, 'x')
  await new Promise((r) => setImmediate(r))
  t.equal(seen.length, 4, 'nothing after unsubscribing')
})

t.test('a slow listener does not slow gets: its queue is bounded, the overflow counted and said once', async (t) => {
  const c = await startGroupCluster(t, 2, { maxQueuedEvents: 5 })
  const g = c.groups[0]!
  let called = 0
  // Never returns: every later event waits in its queue, then overflows.
  g.on('change', () => {
    called++
    return new Promise(() => {})
  })
  const fast: ChangeEvent[] = []
  g.on('change', (e) => {
    fast.push(e)
  })
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => {
    process.off('warning', onWarning)
  })
  for (let i = 0; i < 20; i++) await c.groups[1]!.set(`k${i}`, `v${i}`)
  const gets = Promise.all(Array.from({ length: 20 }, (_, i) => g.get(`k${i}`)))
  t.same(
    await settledWithin(gets, 10_000),
    Array.from({ length: 20 }, (_, i) => `v${i}`),
    'every get answered while the listener hangs',
  )
  await eventually(() => fast.length === 20, 'the other listener got every event')
  t.equal(called, 1, 'the slow listener is still on its first event')
  t.equal(g.stats().eventsDropped, 20 - 1 - 5, 'one delivered, five queued, the rest dropped and counted')
  await eventually(() => warnings.some((w) => (w as { code?: string }).code === 'PEERCACHE_EVENTS_DROPPED'), 'a warning')
  t.equal(warnings.filter((w) => (w as { code?: string }).code === 'PEERCACHE_EVENTS_DROPPED').length, 1, 'said once')
})

t.test('a listener that throws is reported once and keeps getting events', async (t) => {
  let n = 0
  const q = new BoundedQueue<number>(
    (x) => {
      n += x
      throw new Error('boom')
    },
    10,
    () => {},
    () => {},
  )
  for (let i = 1; i <= 3; i++) q.push(i)
  await new Promise((r) => setImmediate(r))
  t.equal(n, 6)
  const c = await startGroupCluster(t, 1)
  c.groups[0]!.on('change', () => {
    throw new Error('listener bug')
  })
  const warned = once(process, 'warning')
  await c.groups[0]!.set('k', 'v')
  const [w] = (await warned) as [Error & { code?: string }]
  t.equal(w.code, 'PEERCACHE_EVENT_LISTENER_FAILED')
  t.throws(() => c.groups[0]!.on('nope' as 'change', () => {}), InvalidOptionError)
})

t.test('evictions are announced by the process that evicted', async (t) => {
  const c = await startGroupCluster(t, 1, { maxBytes: 8 * 1024, hotCacheRatio: 0 })
  const [seen] = listen(c.groups)
  for (let i = 0; i < 20; i++) await c.groups[0]!.set(`k${i}`, 'x'.repeat(500))
  await eventually(() => seen!.some((e) => e.kind === 'evict'), 'an eviction')
  const evicted = seen!.filter((e) => e.kind === 'evict')
  t.equal(evicted.length, c.groups[0]!.stats().main.evictions, 'one event per eviction')
  t.ok(
    evicted.every((e) => e.origin === c.urls[0]),
    'origin: this process',
  )
})
