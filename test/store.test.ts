// lib/store.ts alone: versions only grow, a write older than what is held or than a removal is
// refused (the tombstone that stops a late load or copy from bringing a value back), and a set's
// partial removal drops only the copies older than the new version.
import t from 'tap'
import type { Entry } from '../lib/cache.js'
import { Store } from '../lib/store.js'

const entry = (value: string, version: number, expiresAt = 0): Entry<string> => ({ value, bytes: Buffer.from(value), expiresAt, version })
const newStore = () => new Store<string>(1 << 20, 1 << 16)
/** What the store would answer a get with: the main cache first, then the hot cache. */
const held = (store: Store<string>, key: string) => (store.main.get(key) ?? store.hot.get(key))?.value

t.test('versions grow strictly, even many within one millisecond, and follow the wall clock', async (t) => {
  const store = newStore()
  const before = Date.now() * 1000
  const versions = Array.from({ length: 10_000 }, () => store.nextVersion())
  t.ok(
    versions.every((v, i) => i === 0 || v > versions[i - 1]!),
    'each version is larger than the one before',
  )
  t.ok(versions[0]! >= before, 'a version is at least the wall clock in µs, so a restarted owner does not reuse old versions')
  t.ok(Number.isSafeInteger(versions.at(-1)!), 'versions stay exact as JS numbers (they cross the wire as decimal text)')
})

t.test('put keeps the newest version: an older write is refused, an equal or newer one replaces', async (t) => {
  const store = newStore()
  t.equal(store.put('k', entry('v5', 5), 'main'), true)
  t.equal(store.put('k', entry('v4', 4), 'main'), false, 'older than the main copy: refused')
  t.equal(store.put('k', entry('v3', 3), 'hot'), false, 'older than the main copy, into the hot cache: refused')
  t.equal(held(store, 'k'), 'v5')
  t.equal(store.put('k', entry('v5 again', 5), 'main'), true, 'the same version is stored (a repeated replica copy)')
  t.equal(store.put('k', entry('v6', 6), 'main'), true)
  t.equal(held(store, 'k'), 'v6')
})

t.test('a key lives in one cache at a time: main or hot', async (t) => {
  const store = newStore()
  store.put('k', entry('hot', 1), 'hot')
  store.put('k', entry('main', 2), 'main')
  t.equal(store.hot.get('k'), undefined, 'moving to main drops the hot copy')
  t.equal(store.main.get('k')?.value, 'main')
  store.put('k', entry('hot again', 3), 'hot')
  t.equal(store.main.get('k'), undefined, 'moving to hot drops the main copy')
  t.equal(store.hot.get('k')?.value, 'hot again')
})

t.test('an already expired entry is not stored', async (t) => {
  const store = newStore()
  t.equal(store.put('k', entry('gone', 1, Date.now() - 1), 'main'), false)
  t.equal(held(store, 'k'), undefined)
})

t.test('remove(key) drops every copy and refuses writes made before it (the tombstone)', async (t) => {
  const store = newStore()
  const loadedBefore = store.nextVersion() // a load that finished before the remove, its copy still in transit
  store.put('m', entry('main copy', store.nextVersion()), 'main')
  store.put('h', entry('hot copy', store.nextVersion()), 'hot')
  store.remove('m')
  store.remove('h')
  t.equal(held(store, 'm'), undefined, 'the main copy is gone')
  t.equal(held(store, 'h'), undefined, 'the hot copy is gone')
  t.equal(store.put('m', entry('late copy', loadedBefore), 'main'), false, 'a write made before the remove cannot bring the key back')
  t.equal(store.put('h', entry('late copy', loadedBefore), 'hot'), false, 'nor as a hot copy')
  t.equal(store.put('m', entry('reloaded', store.nextVersion()), 'main'), true, 'a value made after the remove is stored')
  t.equal(held(store, 'm'), 'reloaded')
})

t.test('remove(key, before) drops only copies older than `before` (a set invalidating old copies)', async (t) => {
  const store = newStore()
  const older = store.nextVersion()
  const setVersion = store.nextVersion()
  const newer = store.nextVersion()
  store.put('old', entry('old copy', older), 'hot')
  store.put('same', entry('the set value itself', setVersion), 'main')
  store.put('new', entry('newer copy', newer), 'main')
  for (const key of ['old', 'same', 'new']) store.remove(key, setVersion)
  t.equal(held(store, 'old'), undefined, 'an older copy is dropped')
  t.equal(held(store, 'same'), 'the set value itself', 'the set version is kept')
  t.equal(held(store, 'new'), 'newer copy', 'a newer copy is kept')
  t.equal(store.put('old', entry('late old copy', older), 'hot'), false, 'an older write arriving late is refused')
  t.equal(store.put('old', entry('the set value', setVersion), 'main'), true, 'the set version itself is accepted (its replica copy)')
})

t.test('a later partial removal never lowers an earlier full removal', async (t) => {
  const store = newStore()
  const made = store.nextVersion()
  store.remove('k') // removes everything up to now
  store.remove('k', 1) // a set's invalidation with a tiny version, arriving late
  t.equal(store.put('k', entry('resurrected', made), 'main'), false, 'the full removal still refuses the old write')
})

// Versions are the owner's wall clock; a remove runs on every peer by that peer's clock. Clocks of
// different machines differ, so the promise must hold whatever the owner's clock says.
/** A version made by an owner whose clock is 10 s ahead of this process's. */
const aheadVersion = () => (Date.now() + 10_000) * 1000

t.test('remove(key) drops a copy versioned by an owner whose clock runs ahead, and refuses it later', async (t) => {
  const store = newStore()
  const ownerVersion = aheadVersion()
  store.put('k', entry('copy from the owner', ownerVersion), 'hot')
  store.remove('k')
  t.equal(held(store, 'k'), undefined, 'a remove drops the copy whatever its version')
  t.equal(store.put('k', entry('the same copy, late', ownerVersion), 'hot'), false, 'and refuses it when it arrives again')
})

t.test("a remove carrying the owner's tombstone refuses a copy in transit from an owner whose clock runs ahead", async (t) => {
  const owner = newStore()
  const replica = newStore()
  // The owner made the value (and sent its replica copy) just before the remove reached it; the
  // remove reaches this replica first, holding nothing yet. The remover passes on the owner's
  // tombstone (group.remove: DELETE at the owner first, then the others with its version).
  const inTransit = aheadVersion()
  owner.put('k', entry('removed value', inTransit), 'main')
  const line = owner.remove('k')
  t.ok(line >= inTransit, "the owner's tombstone covers what it held")
  replica.remove('k', line + 1)
  t.equal(replica.put('k', entry('removed value, arriving late', inTransit), 'main'), false, 'the late copy is refused')
  t.equal(owner.put('k', entry('a later write at the owner', owner.nextVersion()), 'main'), true, 'a new write at the owner still wins')
})
