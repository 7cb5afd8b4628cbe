// The byte-bounded LRU: never over its budget, a too-large value not stored, expiry at the owner's
// absolute time, and counts of what happened.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { ByteCache, ENTRY_OVERHEAD_BYTES, type Entry, entrySize } from '../lib/cache.js'

const entry = (size: number, expiresAt = 0, version = 1): Entry<Buffer> => {
  const bytes = Buffer.alloc(size, 1)
  return { value: bytes, bytes, expiresAt, version }
}

t.test('entrySize counts value, key and overhead', async (t) => {
  t.equal(entrySize('abc', Buffer.alloc(10)), 10 + 3 + ENTRY_OVERHEAD_BYTES)
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
  const counted = [...cache.entries()].reduce((sum, [k, e]) => sum + entrySize(k, e.bytes), 0)
  t.equal(s.bytes, counted, 'the reported bytes are the sum of the entries')
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
