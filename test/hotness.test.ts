// The hotness sketch: counts grow with fetches, one-off keys stay low, old popularity fades.
import t from 'tap'
import { Hotness } from '../lib/hotness.js'

t.test('add counts fetches of a key; estimate reads without counting', async (t) => {
  const h = new Hotness()
  t.equal(h.estimate('k'), 0)
  t.equal(h.add('k'), 1)
  t.equal(h.add('k'), 2)
  t.equal(h.estimate('k'), 2)
  t.equal(h.estimate('k'), 2, 'estimate does not count')
})

t.test('under a steady stream of distinct keys, few one-off keys look hot and repeated keys do', async (t) => {
  // The default sizes, well past the first windows: the steady state a busy process lives in.
  const h = new Hotness()
  for (let i = 0; i < 100_000; i++) h.add(`warm-${i}`)
  let falseHot = 0
  let detected = 0
  let repeats = 0
  for (let i = 0; i < 50_000; i++) {
    if (h.add(`once-${i}`) >= 2) falseHot++
    if (i % 500 === 0) {
      repeats++
      if (h.add('every-500') >= 2) detected++
    }
  }
  t.comment(`one-off keys judged hot: ${((falseHot / 50_000) * 100).toFixed(1)} %; a key fetched every 500: ${detected}/${repeats}`)
  t.ok(falseHot / 50_000 < 0.1, 'fewer one-off keys look hot than groupcache copies at random (1 in 10)')
  t.ok(detected >= repeats - 2, 'a key fetched again within the window is judged hot')
})

t.test('counters saturate at 255', async (t) => {
  const h = new Hotness(16, 1_000_000)
  for (let i = 0; i < 300; i++) h.add('k')
  t.equal(h.estimate('k'), 255)
  t.equal(h.add('k'), 255)
})

t.test('every window of adds halves the counts, so old popularity fades', async (t) => {
  const h = new Hotness(64, 100)
  for (let i = 0; i < 40; i++) h.add('old')
  t.equal(h.estimate('old'), 40)
  for (let i = 0; i < 60; i++) h.add(`other-${i}`)
  t.ok(h.estimate('old') <= 20 + 3 && h.estimate('old') >= 20, `halved to ${h.estimate('old')}`)
})

t.test('width rounds up to a power of two of at least 16', async (t) => {
  const h = new Hotness(1)
  t.equal(h.add('a'), 1)
})
