// lib/slabs.ts, alone and under lib/cache.ts: values packed into slabs, dead space counted, slabs
// compacted once less than half used, and the promise callers rely on: a view handed out never
// changes, whatever the cache does after (eviction, overwrite, delete, compaction, clear).
import t from 'tap'
import { ByteCache, type Entry } from '../lib/cache.js'
import { SLAB_HEADER_BYTES, SlabArena, type SlabOwner } from '../lib/slabs.js'

/** A value whose every byte says which key and which write it is (a changed byte shows). */
const patterned = (n: number, write: number, size: number): Buffer => {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (n * 31 + write * 7 + i) & 0xff
  return bytes
}
const entry = (bytes: Buffer, version = 1): Entry<Buffer> => ({ value: bytes, bytes, expiresAt: 0, version })

/** A record owner over a Map, as lib/cache.ts keeps one in its columns. */
function arenaWithOwner(slabBytes: number) {
  const locations = new Map<number, number>()
  const moves: number[] = []
  const owner: SlabOwner = {
    holds: (slot, location) => locations.get(slot) === location,
    moved: (slot, location) => {
      locations.set(slot, location)
      moves.push(slot)
    },
  }
  return { arena: new SlabArena(owner, slabBytes), locations, moves }
}

t.test('records are packed into one slab until it is full, then a new slab opens', async (t) => {
  const { arena, locations } = arenaWithOwner(1024)
  const per = 100 + SLAB_HEADER_BYTES
  const fit = Math.floor(1024 / per)
  for (let slot = 0; slot < fit; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  t.equal(arena.slabs, 1, `${fit} values of 100 bytes in one slab of 1 KiB`)
  locations.set(fit, arena.add(fit, patterned(fit, 0, 100)))
  t.equal(arena.slabs, 2, 'the next one opens a second slab')
  t.equal(arena.deadBytes, 1024 - fit * per, "the closed slab's unwritten tail is dead space")
  for (const [slot, location] of locations) t.same(arena.view(location, 100), patterned(slot, 0, 100), `slot ${slot} reads back`)
})

t.test('a slab emptied is let go without copying anything', async (t) => {
  const { arena, locations, moves } = arenaWithOwner(1024)
  const fit = Math.floor(1024 / (100 + SLAB_HEADER_BYTES))
  for (let slot = 0; slot < 8 * fit + 1; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  t.equal(arena.slabs, 9)
  for (let slot = 0; slot < fit; slot++) {
    arena.release(locations.get(slot)!, 100)
    locations.delete(slot)
  }
  t.equal(arena.slabs, 8, 'the first slab is gone')
  t.same(moves, [], 'nothing was copied')
  t.equal(arena.compactions, 0)
  t.equal(arena.deadBytes, 7 * (1024 - fit * (100 + SLAB_HEADER_BYTES)), 'only the tails of the closed slabs are dead')
})

t.test('when dead bytes pass a quarter of the slabs, the emptiest slab is compacted: survivors move, views stay', async (t) => {
  const { arena, locations, moves } = arenaWithOwner(1024)
  const per = 100 + SLAB_HEADER_BYTES
  const fit = Math.floor(1024 / per)
  const total = 4 * fit + 1
  for (let slot = 0; slot < total; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  const views = [...locations].map(([slot, location]) => [slot, arena.view(location, 100)] as const)
  // Every other record of the first three slabs, the third slab's first: holes everywhere, the third slab emptiest.
  const freed = [...locations.keys()].filter((slot) => slot < 3 * fit && (slot % 2 === 0 || slot >= 2 * fit))
  for (const slot of freed) {
    arena.release(locations.get(slot)!, 100)
    locations.delete(slot)
  }
  t.ok(arena.compactions > 0, `${arena.compactions} compactions`)
  t.ok(moves.length > 0 && moves.length < freed.length, `${moves.length} survivors copied, ${freed.length} records freed`)
  t.ok(arena.deadBytes <= 0.25 * arena.slabs * 1024, `dead bytes ${arena.deadBytes} within a quarter of ${arena.slabs} slabs`)
  for (const [slot, location] of locations) t.same(arena.view(location, 100), patterned(slot, 0, 100), `slot ${slot} reads back`)
  t.equal(views.filter(([slot, view]) => !view.equals(patterned(slot, 0, 100))).length, 0, 'views taken before are unchanged')
  // Fill on: the indexes let go are used again.
  for (let slot = 1000; slot < 1000 + 4 * fit; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  t.ok(arena.slabs <= Math.ceil((locations.size * per) / (0.75 * 1024)) + 1, `${arena.slabs} slabs for ${locations.size} records`)
  arena.clear()
  t.equal(arena.slabs, 0)
  t.equal(arena.deadBytes, 0)
})

t.test('a slab never viewed is written again; one viewed is not', async (t) => {
  const { arena, locations } = arenaWithOwner(1024)
  const fit = Math.floor(1024 / (100 + SLAB_HEADER_BYTES))
  for (let slot = 0; slot < 2 * fit; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  const view = arena.view(locations.get(0)!, 100)
  const notViewedSlab = arena.view(locations.get(fit)!, 100).buffer // viewing marks it: use a third slab instead
  t.ok(view.buffer !== notViewedSlab)
  for (let slot = 2 * fit; slot < 3 * fit + 1; slot++) locations.set(slot, arena.add(slot, patterned(slot, 0, 100)))
  // The third slab (never viewed) and the first (viewed) are emptied; the next slabs opened reuse only the third.
  const release = (slot: number) => {
    arena.release(locations.get(slot)!, 100)
    locations.delete(slot)
  }
  for (let slot = 0; slot < fit; slot++) release(slot)
  for (let slot = 2 * fit; slot < 3 * fit; slot++) release(slot)
  for (let slot = 5000; slot < 5000 + 3 * fit; slot++) locations.set(slot, arena.add(slot, patterned(slot, 1, 100)))
  t.same(view, patterned(0, 0, 100), 'the viewed slab was never written again')
})

t.test('views handed out never change: hits, gets and entries, then overwrites, deletes, evictions and compactions', async (t) => {
  const size = 120
  const cache = new ByteCache<Buffer>(256 * 1024)
  const keys = 2000
  const held: [Buffer, Buffer][] = []
  let write = 0
  let rng = 11
  for (let round = 0; round < 20; round++) {
    write++
    for (let n = 0; n < keys; n++) {
      rng = (rng * 48271) % 2147483647
      const key = `k${rng % keys}`
      cache.set(key, entry(patterned(n, write, size), write))
      if (n % 50 === 0) {
        held.push([cache.valueAt(cache.find(key)), patterned(n, write, size)])
        held.push([cache.get(key)!.bytes as Buffer, patterned(n, write, size)])
      }
      if (n % 97 === 0) cache.delete(`k${(n * 13) % keys}`)
    }
    for (const [key, e] of cache.entries()) if (key.endsWith('3')) held.push([e.bytes as Buffer, Buffer.from(e.bytes)])
  }
  const s = cache.stats()
  t.ok(s.evictions > 0 && cache.slabStats().compactions > 0, `${s.evictions} evictions, ${cache.slabStats().compactions} compactions`)
  const changed = held.filter(([view, expected]) => !view.equals(expected)).length
  t.equal(changed, 0, `none of ${held.length} views held changed`)
  cache.clear()
  t.equal(held.filter(([view, expected]) => !view.equals(expected)).length, 0, 'nor after a clear')
})

t.test('churn cannot make the slabs creep: held slabs stay near the budget, dead bytes under half', async (t) => {
  const maxBytes = 1 << 20
  const cache = new ByteCache<Buffer>(maxBytes)
  let rng = 7
  for (let i = 0; i < 100_000; i++) {
    rng = (rng * 48271) % 2147483647
    const key = `k${rng % 20_000}`
    // Mixed sizes and a hit now and then: holes of every size in every slab.
    cache.set(key, entry(patterned(i, 0, 20 + (rng % 900))))
    if (i % 3 === 0) cache.find(`k${(rng >> 3) % 20_000}`)
    const s = cache.stats()
    if (s.bytes > maxBytes) t.fail(`over the budget at write ${i}: ${s.bytes}`)
  }
  const { slabs, deadBytes, compactions } = cache.slabStats()
  const slabBytes = 64 * 1024
  t.ok(slabs * slabBytes <= 2 * maxBytes + slabBytes, `${slabs} slabs of 64 KiB held for a budget of 1 MiB`)
  t.ok(deadBytes <= cache.stats().bytes, `dead bytes ${deadBytes} are charged within the budget`)
  t.ok(compactions > 0, `${compactions} compactions`)
  let bytes = 0
  for (const [key] of cache.entries()) bytes += cache.sizeOf(key)
  t.equal(cache.stats().bytes, bytes + deadBytes, 'the budget counts the entries and the dead bytes, nothing else')
})

t.test("through a group: a value a caller holds is unchanged after the key's overwrite, eviction and the cache's clear", async (t) => {
  const { Peer } = await import('../lib/index.js')
  const peer = new Peer({ self: 'http://127.0.0.1:9' }) // never listens: alone on its ring, it owns every key
  t.teardown(() => peer.close())
  let write = 0
  const group = peer.group('held', { maxBytes: 1 << 20, hotCacheRatio: 0, load: (key) => patterned(Number(key.slice(1)), write, 100) })
  const held: [Buffer, Buffer][] = []
  for (write = 0; write < 6; write++) {
    for (let n = 0; n < 5000; n++) {
      const key = `k${(n * 17 + write) % 8000}`
      const value = (await group.get(key)) as Buffer
      if (n % 100 === 0) held.push([value, Buffer.from(value)])
      if (n % 3 === 0) await group.set(key, patterned(n, write + 100, 100))
    }
  }
  t.ok(group.stats().main.evictions > 0, `${group.stats().main.evictions} evictions`)
  await group.clear()
  t.equal(held.filter(([value, copy]) => !value.equals(copy)).length, 0, `none of ${held.length} values held changed`)
})
