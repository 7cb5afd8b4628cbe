// The byte-bounded LRU: never over its budget, a too-large value not stored, expiry at the owner's
// absolute time, and counts of what happened.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { BUFFER_OVERHEAD_BYTES, ByteCache, ENTRY_OVERHEAD_BYTES, VIEW_OVERHEAD_BYTES, type Entry, entrySize } from '../lib/cache.js'
import { SLAB_VALUE_MAX_BYTES } from '../lib/slabs.js'

const entry = (size: number, expiresAt = 0, version = 1): Entry<Buffer> => {
  const bytes = Buffer.alloc(size, 1)
  return { value: bytes, bytes, expiresAt, version }
}

t.test('entrySize counts value, key and overhead (and a Buffer of its own above the slab limit)', async (t) => {
  t.equal(entrySize('abc', Buffer.alloc(10)), 10 + 3 + ENTRY_OVERHEAD_BYTES)
  const big = SLAB_VALUE_MAX_BYTES + 1
  t.equal(entrySize('abc', Buffer.alloc(big)), big + 3 + ENTRY_OVERHEAD_BYTES + BUFFER_OVERHEAD_BYTES)
})

t.test('the byte bound is never exceeded, whatever the sizes', async (t) => {
  const cache = new ByteCache<Buffer>(50_000)
  let over = 0
  let rng = 1
  for (let i = 0; i < 5000; i++) {
    rng = (rng * 48271) % 2147483647
    cache.set(`key-${i}`, entry(rng % 3000))
    if (cache.stats().bytes > cache.maxBytes) over++
  }
  const s = cache.stats()
  t.equal(over, 0, 'bytes <= maxBytes after every set')
  t.ok(s.items > 0 && s.evictions > 0, `${s.items} items kept, ${s.evictions} evicted`)
  const counted = [...cache.entries()].reduce((sum, [k]) => sum + cache.sizeOf(k), 0)
  t.equal(s.bytes, counted + cache.slabStats().deadBytes, 'the reported bytes are the sum of the entries and the dead bytes of slabs')
  t.ok(cache.slabStats().compactions > 0, 'slabs were compacted')
})

t.test('a value larger than the cache is not stored and returns false', async (t) => {
  const cache = new ByteCache<Buffer>(1000)
  t.equal(cache.set('small', entry(10)), true)
  t.equal(cache.set('big', entry(1000)), false)
  t.equal(cache.get('big'), undefined)
  t.ok(cache.get('small'), 'storing nothing evicts nothing')
})

t.test('replacing a key with a value too large to store drops the old value', async (t) => {
  // Otherwise a set of a big value would leave the old one to be served as if current.
  const cache = new ByteCache<Buffer>(1000)
  cache.set('k', entry(10, 0, 1))
  t.equal(cache.set('k', entry(5000, 0, 2)), false)
  t.equal(cache.get('k'), undefined)
})

t.test('a zero budget stores nothing', async (t) => {
  const cache = new ByteCache<Buffer>(0)
  t.equal(cache.set('k', entry(1)), false)
  t.equal(cache.get('k'), undefined)
  t.same(cache.stats(), { bytes: 0, items: 0, maxBytes: 0, evictions: 0, expirations: 0 })
  t.same([...cache.entries()], [])
  t.equal(cache.delete('k'), false)
})

t.test('entries expire at their absolute time and are never returned after it', async (t) => {
  const cache = new ByteCache<Buffer>(10_000)
  t.equal(cache.set('past', entry(1, Date.now() - 1)), false, 'an entry already expired is not stored')
  cache.set('soon', entry(1, Date.now() + 40))
  cache.set('never', entry(1, 0))
  t.ok(cache.get('soon'))
  await sleep(80)
  t.equal(cache.get('soon'), undefined)
  t.ok(cache.get('never'))
  t.equal(cache.stats().expirations, 1)
})

t.test('an expired replacement removes the held value', async (t) => {
  const cache = new ByteCache<Buffer>(10_000)
  cache.set('k', entry(1))
  t.equal(cache.set('k', entry(1, Date.now() - 1)), false)
  t.equal(cache.get('k'), undefined)
})

t.test('LRU order: the least recently used entry is evicted first', async (t) => {
  const size = entrySize('a', Buffer.alloc(100))
  const cache = new ByteCache<Buffer>(size * 3)
  for (const k of ['a', 'b', 'c']) cache.set(k, entry(100))
  cache.get('a')
  cache.set('d', entry(100))
  t.same(
    [...cache.entries()].map(([k]) => k),
    ['d', 'a', 'c'],
    'b was least recently used',
  )
  t.equal(cache.stats().evictions, 1)
  t.equal(cache.delete('a'), true)
  t.equal(cache.stats().items, 2)
})

t.test('a hit keeps its Buffer view for the next hits, and charges it', async (t) => {
  const cache = new ByteCache<Buffer>(1 << 20)
  cache.set('k', entry(100))
  const before = cache.stats().bytes
  const slot = cache.find('k')
  const first = cache.valueAt(slot)
  t.equal(cache.stats().bytes, before + VIEW_OVERHEAD_BYTES, 'the kept view is charged')
  t.equal(cache.valueAt(cache.find('k')), first, 'the next hit returns the same Buffer')
  t.same(first, Buffer.alloc(100, 1))
  cache.delete('k')
  t.equal(cache.stats().bytes, 0, 'nothing is charged once the entry is gone')
})

t.test('the values of a codec other than bytes are kept decoded, and absent values too', async (t) => {
  const cache = new ByteCache<unknown>(1 << 20)
  const bytes = Buffer.from('{"a":1}')
  const decoded = { a: 1 }
  cache.set('json', { value: decoded, bytes, expiresAt: 0, version: 3 })
  cache.set('absent', { value: undefined, bytes: Buffer.alloc(0), expiresAt: 0, version: 4, absent: true })
  t.equal(cache.valueAt(cache.find('json')), decoded, 'the decoded value itself')
  t.same(cache.get('json')?.bytes, bytes, 'and its bytes')
  t.equal(cache.sizeOf('json'), entrySize('json', bytes))
  const absent = cache.get('absent')
  t.equal(absent?.absent, true)
  t.equal(absent?.value, undefined)
  t.equal(cache.valueAt(cache.find('absent')), undefined)
  t.equal(cache.versionOf('absent'), 4)
})

t.test('versionOf reads the version without changing the LRU order, and drops an entry past its expiry', async (t) => {
  const cache = new ByteCache<Buffer>(1 << 20)
  cache.set('a', entry(1, 0, 7))
  cache.set('b', entry(1, Date.now() + 30, 8))
  t.equal(cache.versionOf('a'), 7)
  t.same(
    [...cache.entries()].map(([k]) => k),
    ['b', 'a'],
  )
  await sleep(60)
  t.equal(cache.versionOf('b'), undefined)
  t.equal(cache.stats().expirations, 1)
  t.equal(cache.versionOf('nothing'), undefined)
})

t.test('clear() lets every slab go and the cache is used again from empty', async (t) => {
  const cache = new ByteCache<Buffer>(1 << 20)
  for (let i = 0; i < 1000; i++) cache.set(`k${i}`, entry(200))
  const held = cache.get('k5')!.bytes
  cache.clear()
  t.same(cache.stats(), { bytes: 0, items: 0, maxBytes: 1 << 20, evictions: 0, expirations: 0 })
  t.equal(cache.slabStats().slabs, 0)
  t.same(held, Buffer.alloc(200, 1), 'a view taken before the clear still reads its value')
  cache.set('again', entry(10))
  t.equal(cache.get('again')?.bytes.length, 10)
})
