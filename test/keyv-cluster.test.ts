// Keyv, cache-manager v7 and cacheable, unchanged, in 3 OS processes of one application
// (test/fixtures/keyv-member.mjs) whose store is a peercache group (KeyvPeercache): what one process
// sets the others read, wrap computes in one process and the others reuse it, TTLs expire, delete and clear reach every
// process. Then the same assertions with @keyv/redis on a real Redis (Debian's redis-server, or a
// one-line skip), the store such applications use today.
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { type Member, startCluster } from './helpers/cluster.js'
import { startRedis } from './helpers/redis.js'
import type { TapTest } from './helpers/tap.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/keyv-member.mjs', import.meta.url))
const LIBS = ['keyv', 'cache-manager', 'cacheable'] as const
/** Time to live of the expiring values, in ms: long enough to read them back first on a busy machine. */
const TTL_MS = 2000

type Lib = (typeof LIBS)[number]
type Answer = { value?: unknown; absent?: true }

function op(m: Member, lib: Lib, what: string, key?: string, value?: unknown, ttl?: number): Promise<Answer> {
  return m.request('op', { lib, op: what, key, value, ttl })
}

async function checkLibraries(t: TapTest, members: Member[]): Promise<void> {
  const [a, b, c] = members as [Member, Member, Member]
  for (const lib of LIBS) {
    t.test(`${lib}: set in one process, read in the others`, async (t) => {
      const value = { user: 42, name: 'Ada', tags: ['a', 'b'] }
      await op(a, lib, 'set', 'user:42', value)
      for (const m of [a, b, c]) t.same(await op(m, lib, 'get', 'user:42'), { value }, `${m.name} reads it`)
      t.same(await op(b, lib, 'get', 'never-set'), { absent: true }, 'a key never set is undefined')
    })

    t.test(`${lib}: wrap computes in one process, the others reuse its value`, async (t) => {
      const before = await Promise.all(members.map((m) => m.request<number>('computed')))
      const first = await op(b, lib, 'wrap', `report-${lib}`)
      t.match(first.value, new RegExp(`^computed by ${b.name} for `), 'computed where it was first asked for')
      for (const m of [a, c, b]) t.same(await op(m, lib, 'wrap', `report-${lib}`), first, `${m.name} gets the same value`)
      const after = await Promise.all(members.map((m) => m.request<number>('computed')))
      t.same(
        after.map((n, i) => n - before[i]!),
        [0, 1, 0],
        `one computation, in ${b.name}`,
      )
    })

    t.test(`${lib}: a value set with a ttl expires everywhere`, async (t) => {
      const started = Date.now()
      await op(c, lib, 'set', 'session', 'token', TTL_MS)
      const read = await op(a, lib, 'get', 'session')
      // Only a read that finished before the expiry can be asked to see the value.
      if (Date.now() < started + TTL_MS) t.same(read, { value: 'token' }, 'readable before it expires')
      else t.comment('the machine was too slow to read the value back within its ttl')
      await sleep(started + TTL_MS + 50 - Date.now())
      for (const m of [a, b, c]) t.same(await op(m, lib, 'get', 'session'), { absent: true }, `${m.name}: expired`)
    })

    t.test(`${lib}: delete and clear reach every process`, async (t) => {
      for (const key of ['x', 'y']) await op(a, lib, 'set', key, `value of ${key}`)
      for (const m of [a, b, c]) t.same(await op(m, lib, 'get', 'x'), { value: 'value of x' }, `${m.name} has x`)
      await op(c, lib, 'delete', 'x')
      for (const m of [a, b, c]) t.same(await op(m, lib, 'get', 'x'), { absent: true }, `${m.name}: x deleted`)
      t.same(await op(b, lib, 'get', 'y'), { value: 'value of y' }, 'y is still there')
      await op(b, lib, 'clear')
      for (const m of [a, b, c]) t.same(await op(m, lib, 'get', 'y'), { absent: true }, `${m.name}: cleared`)
    })
  }
}

t.test('peercache (KeyvPeercache over a 3-process cluster)', async (t) => {
  const cluster = await startCluster(t, { size: 3, groups: {}, fixture: FIXTURE, init: { backend: 'peercache' } })
  await checkLibraries(t, cluster.members)
})

// Started before the tests are queued (tap's root ends when nothing is queued); stopped at the end of the file.
const redis = await startRedis(t)
t.test('@keyv/redis on a real Redis, the same assertions', 'skip' in redis ? { skip: redis.skip } : {}, async (t) => {
  if ('skip' in redis) return
  const cluster = await startCluster(t, { size: 3, groups: {}, fixture: FIXTURE, init: { backend: 'redis', redisUrl: redis.url } })
  await checkLibraries(t, cluster.members)
})
