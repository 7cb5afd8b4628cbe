// Role of the local-hit scenario's process: `await group.get(key)` of a cached key against
// `await lru.get(key)` on a bare lru-cache holding the same value. Rounds alternate between the
// two so that drift of the shared machine falls on both; each loop is its own function so that
// neither call site is shared (and made polymorphic) by the other. With `metrics`, a second peer
// with Prometheus metrics registered (peer.registerMetrics) is measured in the same rounds: what
// metrics cost a local hit.
import { LRUCache } from 'lru-cache'
import { Peer } from '../../../dist/index.js'
import { median } from '../stats.mjs'

const KEY = 'user:42:profile'

export async function measure({ rounds, opsPerRound, metrics = false }) {
  const value = Buffer.alloc(100, 97)
  const { peer, group } = soloGroup(value)
  const metered = metrics ? soloGroup(value) : undefined
  if (metered) {
    const { Registry } = await import('prom-client')
    const registry = new Registry()
    metered.peer.registerMetrics(registry)
    if (!(await registry.metrics()).includes('peercache_gets_total')) throw new Error('metrics are not registered')
    if ((await metered.group.get(KEY)) !== value) throw new Error('the key is not cached')
  }
  const lru = new LRUCache({ maxSize: 64 * 1024 * 1024, sizeCalculation: (v) => v.length })
  lru.set(KEY, value)
  if ((await group.get(KEY)) !== value || (await lru.get(KEY)) !== value) throw new Error('the key is not cached')
  for (let i = 0; i < 3; i++) {
    await groupRound(group, opsPerRound)
    await lruRound(lru, opsPerRound)
    if (metered) await groupRound(metered.group, opsPerRound)
  }
  const groupNs = []
  const lruNs = []
  const meteredNs = []
  for (let i = 0; i < rounds; i++) {
    groupNs.push(await groupRound(group, opsPerRound))
    lruNs.push(await lruRound(lru, opsPerRound))
    if (metered) meteredNs.push(await groupRound(metered.group, opsPerRound))
  }
  for (const solo of [{ peer, group }, metered]) {
    if (solo === undefined) continue
    const { loads } = solo.group.stats()
    await solo.peer.close()
    if (loads !== 1) throw new Error(`the group loaded ${loads} times: not all gets were hits`)
  }
  const result = { peercacheNs: median(groupNs), lruNs: median(lruNs), roundsNs: { peercache: groupNs, lru: lruNs }, opsPerRound }
  if (metered) Object.assign(result, { metricsNs: median(meteredNs) }, { roundsNs: { ...result.roundsNs, metrics: meteredNs } })
  return result
}

/** A peer alone (it never listens, and owns every key) with one bytes group whose loader returns `value`. */
function soloGroup(value) {
  const peer = new Peer({ self: 'http://127.0.0.1:9' })
  return { peer, group: peer.group('local', { maxBytes: 64 * 1024 * 1024, load: () => value }) }
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
