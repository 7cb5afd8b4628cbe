// An origin that hangs or fails: loads end at loadTimeoutMs (the flight with them), a slow origin is
// not taken for a dead owner, and staleIfErrorMs keeps answering with the expired value meanwhile.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { LoadError, LoadTimeoutError, Peer } from '../lib/index.js'
import { findKey, startPeers } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'

function solo(t: TapTest): Peer {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  return peer
}

const never = () => new Promise<string>(() => {})

t.test('a load past loadTimeoutMs: every waiter gets LoadTimeoutError, the flight ends, a late value is still cached', async (t) => {
  let loads = 0
  const g = solo(t).group('g', {
    maxBytes: 1 << 20,
    codec: 'string',
    loadTimeoutMs: 100,
    load: async (k) => {
      loads++
      await sleep(loads === 1 ? 300 : 0)
      return `v:${k}:${loads}`
    },
  })
  const waiters = await Promise.allSettled([g.get('k'), g.get('k'), g.get('k')])
  for (const w of waiters) {
    t.equal(w.status, 'rejected')
    const err = (w as PromiseRejectedResult).reason
    t.ok(err instanceof LoadTimeoutError && err instanceof LoadError, 'a LoadError of the timeout kind')
    t.equal(err.code, 'PEERCACHE_ERR_LOAD_TIMEOUT')
  }
  t.equal(g.stats().inFlight, 0, 'the flight ended with the timeout')
  t.equal(g.stats().loadTimeouts, 1)
  await sleep(400)
  t.equal(await g.get('k'), 'v:k:1', 'the late value was cached when it came')
  t.equal(loads, 1)
})

t.test('a loader that never settles: a get without a signal still ends (it used to wait forever)', async (t) => {
  const g = solo(t).group('g', { maxBytes: 1 << 20, codec: 'string', loadTimeoutMs: 50, load: never })
  await t.rejects(g.get('x'), { code: 'PEERCACHE_ERR_LOAD_TIMEOUT' })
  t.equal(g.stats().inFlight, 0, 'no flight is left behind')
})

t.test('a hung origin at the owner is not a dead owner: askers hear the timeout, load nothing, and cached keys come at once', async (t) => {
  const tp = await startPeers(t, 2)
  const groups = tp.group('g', () => ({
    maxBytes: 1 << 20,
    replicas: 1,
    codec: 'string' as const,
    loadTimeoutMs: 300,
    load: (k: string) => (k.startsWith('hang') ? never() : `v:${k}`),
  }))
  const [owner, asker] = groups as [(typeof groups)[0], (typeof groups)[0]]
  const cachedKey = findKey(
    (k) => tp.ownerIndex(k) === 0,
    (function* () {
      for (let i = 0; ; i++) yield `ok${i}`
    })(),
  )
  t.equal(await owner.get(cachedKey), `v:${cachedKey}`)
  const hangKeys = Array.from({ length: 400 }, (_, i) => `hang${i}`).filter((k) => tp.ownerIndex(k) === 0)
  const hanging = Promise.allSettled(hangKeys.map((k) => asker.get(k)))
  await sleep(50)
  t.equal(await asker.get(cachedKey), `v:${cachedKey}`, 'a cached key is answered while the hung loads wait')
  const settled = await hanging
  t.ok(
    settled.every((s) => s.status === 'rejected' && s.reason instanceof LoadTimeoutError),
    `all ${hangKeys.length} hung gets ended with the owner's LoadTimeoutError`,
  )
  const s = asker.stats()
  t.equal(s.localLoads, 0, 'the asker loaded nothing itself (the dedup held)')
  t.equal(s.peerErrors, 0, 'and never took the owner for unavailable')
  t.equal(tp.peers[1]!.health().find((h) => h.peer === tp.urls[0])?.state, 'up', 'the owner is up in its eyes')
})

t.test('staleIfErrorMs: a failed reload returns the expired value within the window, counted; after it, the error', async (t) => {
  let fail = false
  let n = 0
  const peer = solo(t)
  const options = {
    maxBytes: 1 << 20,
    codec: 'string' as const,
    ttlMs: 30,
    load: (k: string) => {
      if (fail) throw new Error('database down')
      return `v:${k}:${++n}`
    },
  }
  const g = peer.group('g', { ...options, staleIfErrorMs: 60_000 })
  const plain = peer.group('plain', options)
  t.equal(await g.get('k'), 'v:k:1')
  t.equal(await plain.get('k'), 'v:k:2')
  await sleep(60)
  fail = true
  t.equal(await g.get('k'), 'v:k:1', 'the expired value, since the origin failed')
  t.match(g.stats(), { staleIfErrorHits: 1, loadErrors: 1 })
  await t.rejects(plain.get('k'), LoadError, 'without the option the error reaches the caller')
  fail = false
  t.equal(await g.get('k'), 'v:k:3', 'once the origin answers, the new value (an expired value is not a hit)')
})
