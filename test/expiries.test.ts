// The expiry timer of change events (lib/expiries.ts): one timer, a heap of due times, fired in
// time order; compact keeps only what is still wanted.
import t from 'tap'
import { Expiries } from '../lib/expiries.js'
import { eventually } from './helpers/inproc.js'

t.test('fires each expiry once its time has passed, earliest first, with one timer', async (t) => {
  const fired: string[] = []
  const e = new Expiries((key, version) => fired.push(`${key}@${version}`))
  const now = Date.now()
  e.add('c', 3, now + 60)
  e.add('a', 1, now + 20)
  e.add('b', 2, now + 40)
  e.add('late', 9, now + 60_000)
  t.equal(e.size, 4)
  await eventually(() => fired.length === 3, 'three due')
  t.same(fired, ['a@1', 'b@2', 'c@3'])
  t.equal(e.size, 1, 'the late one waits')
  e.clear()
  t.equal(e.size, 0)
})

t.test('compact drops what is no longer wanted and keeps the order', async (t) => {
  const fired: string[] = []
  const e = new Expiries((key) => fired.push(key))
  const now = Date.now()
  for (let i = 0; i < 50; i++) e.add(`k${i}`, i, now + 30 + ((i * 7) % 50))
  e.compact((_key, version) => version % 2 === 0)
  t.equal(e.size, 25)
  await eventually(() => fired.length === 25, 'the kept ones fire')
  t.ok(
    fired.every((k) => Number(k.slice(1)) % 2 === 0),
    'only the kept ones',
  )
})
