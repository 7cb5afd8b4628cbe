// KeyvPeercache (lib/keyv.ts): Keyv's own compliance suite, @keyv/test-suite, run unchanged on tap
// (helpers/vitest-shim.ts) with Keyv 5 and Keyv 6 over 3 in-process peers (each Keyv the suite makes
// uses the next peer's group, so every case also crosses the network); then what the suite does not
// check: the store's own answers, with and without a loader.
import keyvTestSuite from '@keyv/test-suite'
import { Keyv } from 'keyv'
import { Keyv as Keyv6 } from 'keyv6'
import t from 'tap'
import type { Group } from '../lib/index.js'
import { KeyvPeercache } from '../lib/keyv.js'
import { startPeers } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'
import { vitestOn } from './helpers/vitest-shim.js'

/**
 * The suite's cases this store does not pass, with why. A Keyv namespace is a key prefix inside the
 * group, and peercache cannot list a group's keys, so clear() empties the whole group.
 */
const DIFFERS: Record<string, string> = {
  'namespaced clear only clears current namespace':
    'clear() empties the whole group, every namespace in it (peercache cannot list keys by prefix): one group per namespace you clear on its own',
}

/** What differs with Keyv 6 besides: the suite (2.1.x) is written for Keyv 5, its peer dependency. */
const DIFFERS_KEYV6: Record<string, string> = {
  ...DIFFERS,
  '.deleteMany([keys]) with nonexistent keys resolves to false':
    "Keyv 6's delete([keys]) resolves one boolean per key ([false, false, false], an array, so truthy), where the suite expects Keyv 5's single false",
}

/** Three peers with a group "kv" each ('json' codec, no loader, absent values on); stores rotate over them. */
async function storesOver(t: TapTest): Promise<{ groups: Group<unknown>[]; store: () => KeyvPeercache }> {
  const tp = await startPeers(t, 3)
  const groups = tp.group<unknown>('kv', () => ({ maxBytes: 8 << 20, codec: 'json', absentTtlMs: 60_000 }))
  let next = 0
  return { groups, store: () => new KeyvPeercache(groups[next++ % groups.length]!) }
}

for (const [major, KeyvClass, differs] of [
  ['5', Keyv, DIFFERS],
  ['6', Keyv6, DIFFERS_KEYV6],
] as const) {
  t.test(`@keyv/test-suite with Keyv ${major}`, async (t) => {
    const { store } = await storesOver(t)
    // The suite is typed for Vitest and Keyv 5; the shim gives the part it calls, and Keyv 6 takes the store through its bridge.
    keyvTestSuite(vitestOn(t, differs) as never, KeyvClass as never, store as never)
  })
}

t.test('the store answers as Keyv expects, across peers', async (t) => {
  const { groups } = await storesOver(t)
  const [a, b] = [new KeyvPeercache(groups[0]!), new KeyvPeercache(groups[1]!)]
  t.equal(await a.get('k'), undefined, 'never set: undefined')
  t.equal(await a.set('k', 'v'), true)
  t.equal(await b.get('k'), 'v', 'read through another peer')
  t.same(await b.getMany(['k', 'none']), ['v', undefined])
  t.same(await b.hasMany(['k', 'none']), [true, false])
  t.same(
    await a.setMany([
      { key: 'm1', value: 1 },
      { key: 'm2', value: { two: 2 } },
    ]),
    [true, true],
  )
  t.same(await b.getMany(['m1', 'm2']), [1, { two: 2 }])
  t.equal(await b.delete('k'), true, 'delete of a held key: true')
  t.equal(await b.delete('k'), false, 'again: false')
  t.equal(await a.has('k'), false, 'deleted everywhere')
  t.equal(await a.deleteMany(['m1', 'none']), true, 'deleteMany: true when any was held')
  t.equal(await a.deleteMany(['m1', 'none']), false)
  const { expiresAt } = (await groups[0]!.set('t', 'x', { ttlMs: 60_000 })) as { expiresAt: number }
  t.ok(expiresAt > 0)
  await a.set('t', 'y', 60_000)
  t.equal(await b.get('t'), 'y', 'set with a ttl')
  await b.clear()
  t.same(await a.getMany(['m2', 't']), [undefined, undefined], 'clear reaches every peer')
  t.equal(typeof a.on, 'function', 'an EventEmitter, for Keyv to listen for errors')
  await a.disconnect()
  t.equal(await a.get('after'), undefined, 'disconnect leaves the peer to the application')
})

t.test('over a group with a loader, a key Keyv never set is loaded, once', async (t) => {
  const tp = await startPeers(t, 3)
  let loads = 0
  // The loader returns what Keyv 5 stores (its serialized entry), or undefined when the origin has nothing.
  const groups = tp.group<unknown>('kv', () => ({
    maxBytes: 8 << 20,
    codec: 'json',
    absentTtlMs: 60_000,
    load: async (key: string) => (
      loads++, key === 'app:user' ? JSON.stringify({ value: { name: 'from the origin' }, expires: null }) : undefined
    ),
  }))
  const keyvs = groups.map((g) => new Keyv({ store: new KeyvPeercache(g), namespace: 'app' }))
  const values = await Promise.all(keyvs.flatMap((k) => [k.get('user'), k.get('user'), k.get('nobody')]))
  t.same(
    values,
    Array(3)
      .fill([{ name: 'from the origin' }, { name: 'from the origin' }, undefined])
      .flat(),
  )
  t.equal(loads, 2, 'one load per key for the cluster')
})
