// Role of the local-hit scenario's process: `await group.get(key)` of a cached key against
// `await lru.get(key)` on a bare lru-cache holding the same value. Rounds alternate between the
// two so that drift of the shared machine falls on both; each loop is its own function so that
// neither call site is shared (and made polymorphic) by the other.
import { LRUCache } from 'lru-cache'
import { Peer } from '../../../dist/index.js'
import { median } from '../stats.mjs'

const KEY = 'user:42:profile'

export async function measure({ rounds, opsPerRound }) {
  const value = Buffer.alloc(100, 97)
  const peer = new Peer({ self: 'http://127.0.0.1:9' }) // never listens: alone, it owns the key
  const group = peer.group('local', { maxBytes: 64 * 1024 * 1024, load: () => value })
  const lru = new LRUCache({ maxSize: 64 * 1024 * 1024, sizeCalculation: (v) => v.length })
  lru.set(KEY, value)
  if ((await group.get(KEY)) !== value || (await lru.get(KEY)) !== value) throw new Error('the key is not cached')
  for (let i = 0; i < 3; i++) {
    await groupRound(group, opsPerRound)
    await lruRound(lru, opsPerRound)
  }
  const groupNs = []
  const lruNs = []
  for (let i = 0; i < rounds; i++) {
    groupNs.push(await groupRound(group, opsPerRound))
    lruNs.push(await lruRound(lru, opsPerRound))
  }
  const stats = group.stats()
  await peer.close()
  if (stats.loads !== 1) throw new Error(`the group loaded ${stats.loads} times: not all gets were hits`)
  return { peercacheNs: median(groupNs), lruNs: median(lruNs), roundsNs: { peercache: groupNs, lru: lruNs }, opsPerRound }
}

async function groupRound(group, n) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await group.get(KEY)
  return Number(process.hrtime.bigint() - started) / n
}

async function lruRound(lru, n) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await lru.get(KEY)
  return Number(process.hrtime.bigint() - started) / n
}
