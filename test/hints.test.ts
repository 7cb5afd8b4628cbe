// Hinted hand-off: a peer that missed a set or remove while it could not be reached (its port closed:
// connections refused) has the writes replayed when it is seen up again, so it stops returning the
// replaced value; when hints were given up it is told to drop all it holds.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Peer } from '../lib/index.js'
import { Hints } from '../lib/hints.js'
import { Ring } from '../lib/ring.js'
import { freePort } from './helpers/net.js'
import type { TapTest } from './helpers/tap.js'

const fast = { peerTimeoutMs: 300, probeTimeoutMs: 300, connectTimeoutMs: 300 }

/** A peer served by a server of our own, so its port can be closed and opened again while its caches live on. */
async function switchable(t: TapTest, port: number, urls: string[], options = {}) {
  const peer = new Peer({ self: `http://127.0.0.1:${port}`, peers: urls, ...fast, ...options })
  let server: http.Server | undefined
  const open = async () => {
    server = http.createServer(peer.handler)
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve))
  }
  const cut = async () => {
    const s = server!
    server = undefined
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  t.teardown(async () => {
    if (server) await cut()
    await peer.close()
  })
  await open()
  return { peer, open, cut }
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 8000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await ok()) return
    await sleep(20)
  }
  throw new Error(`not within ${ms} ms: ${what}`)
}

async function cluster(t: TapTest, hints?: object) {
  const ports = [await freePort(), await freePort()]
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const options = hints ? { hints } : {}
  const a = await switchable(t, ports[0]!, urls, options)
  const b = await switchable(t, ports[1]!, urls, options)
  let version = 0
  const groupOf = (p: Peer) =>
    p.group('g', { maxBytes: 1 << 20, replicas: 1, hotThreshold: 1, codec: 'string', load: (k) => `origin:${k}:${++version}` })
  const ring = new Ring(urls)
  const keysOfA = (prefix: string, n: number) => {
    const keys: string[] = []
    for (let i = 0; keys.length < n; i++) if (ring.owners(`${prefix}${i}`, 1)[0] === urls[0]) keys.push(`${prefix}${i}`)
    return keys
  }
  return { a, b, ga: groupOf(a.peer), gb: groupOf(b.peer), keysOfA, urls }
}

t.test('a set and a remove missed while cut off are replayed when the peer is back: no stale value after the heal', async (t) => {
  const { a, b, ga, gb, keysOfA, urls } = await cluster(t)
  const [setKey, removedKey] = keysOfA('k', 2) as [string, string]
  // b fetches both from their owner a and keeps hot copies (hotThreshold 1).
  const before = { set: await gb.get(setKey), removed: await gb.get(removedKey) }
  t.equal(gb.stats().hot.items, 2, 'b holds copies of both')
  await b.cut()
  const set = await ga.set(setKey, 'new value')
  const removed = await ga.remove(removedKey)
  t.same(set.unreachable, [urls[1]], 'b missed the set')
  t.same(removed.unreachable, [urls[1]], 'and the remove')
  t.equal(await gb.get(setKey), before.set, 'cut off, b still answers from its copy (the old value)')
  await b.open()
  await until('a sees b back', () => a.peer.health()[0]?.state === 'up')
  await until('b returns the new value', async () => (await gb.get(setKey)) === 'new value')
  t.not(await gb.get(removedKey), before.removed, 'the removed value is gone from b too')
})

t.test('when hints were given up (a bound was hit), the returning peer drops everything it holds', async (t) => {
  const { a, b, ga, gb, keysOfA } = await cluster(t, { maxHints: 1 })
  const keys = keysOfA('m', 3)
  const old = await Promise.all(keys.map((k) => gb.get(k)))
  t.equal(gb.stats().hot.items, 3)
  await b.cut()
  for (const k of keys) await ga.set(k, `new:${k}`)
  await b.open()
  await until('a sees b back', () => a.peer.health()[0]?.state === 'up')
  await until('b dropped its copies', () => gb.stats().hot.items === 0)
  const now = await Promise.all(keys.map((k) => gb.get(k)))
  t.same(
    now,
    keys.map((k) => `new:${k}`),
    'every key comes back new, not only the one hint kept',
  )
  t.notSame(now, old)
})

t.test('Hints: newest per key, bounded in count and bytes, aged out; a lost peer is said so', async (t) => {
  const h = new Hints({ maxHints: 2, maxBytes: 100, maxAgeMs: 1000 })
  h.add('p', { kind: 'drop', group: 'g', key: 'a', before: 5, at: 0 })
  h.add('p', { kind: 'drop', group: 'g', key: 'a', before: 9, at: 0 })
  t.same(h.size, { hints: 1, bytes: 1 }, 'the newer hint for a key replaces the older')
  h.add('p', { kind: 'copy', group: 'g', key: 'b', bytes: Buffer.alloc(200), version: 1, expiresAt: 0, at: 0 })
  t.same(h.size, { hints: 1, bytes: 1 }, 'a hint over the byte bound is not kept')
  const taken = h.take('p', 500)
  t.equal(taken.lost, true, 'and the peer is lost')
  t.same(
    taken.hints.map((x) => x.key),
    ['a'],
  )
  t.same(h.size, { hints: 0, bytes: 0 })
  h.add('q', { kind: 'drop', group: 'g', key: 'c', before: undefined, at: 0 })
  t.same(h.take('q', 5000), { hints: [], lost: true }, 'a hint older than maxAgeMs is given up')
  t.same(h.take('nobody'), { hints: [], lost: false })
})
