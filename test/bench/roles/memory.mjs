// Role of the memory scenario's fresh process (started with --expose-gc): fills a group to its
// byte budget with 1 KiB values and reports how much the process grew, when just full and after
// as many loads again (evictions free Buffers; what malloc keeps of them shows in RSS).
import { Peer } from '../../../dist/index.js'

/** A group of `maxBytes` (hot cache off: one process owns every key), filled, then churned. */
export async function group({ maxBytes, valueBytes }) {
  const peer = new Peer({ self: 'http://127.0.0.1:9' }) // never listens: alone on the ring, it owns every key
  const g = peer.group('memory', { maxBytes, hotCacheRatio: 0, load: () => Buffer.alloc(valueBytes, 97) })
  const before = await settledUsage()
  let i = 0
  while (g.stats().main.evictions === 0 && i < (maxBytes / valueBytes) * 2) i = await getBatch(g, i)
  const full = report({ maxBytes, valueBytes, ...g.stats().main, before, after: await settledUsage() })
  for (const end = i * 2; i < end; ) i = await getBatch(g, i)
  const churned = report({ maxBytes, valueBytes, ...g.stats().main, before, after: await settledUsage() })
  await peer.close()
  return { full, churned, loads: i }
}

/** The floor: the same number of the same Buffers in a plain Map, no cache around them. */
export async function plainMap({ items, valueBytes }) {
  const before = await settledUsage()
  const map = new Map()
  for (let i = 0; i < items; i++) map.set(`m${i}`, Buffer.alloc(valueBytes, 97))
  const after = await settledUsage()
  return report({ valueBytes, items: map.size, before, after })
}

async function getBatch(g, from) {
  const gets = []
  for (let i = from; i < from + 1000; i++) gets.push(g.get(`m${i}`))
  await Promise.all(gets)
  return from + 1000
}

async function settledUsage() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage()
}

function report({ before, after, items, valueBytes, maxBytes, bytes }) {
  const growth = (field) => after[field] - before[field]
  const rssGrowthBytes = growth('rss')
  return {
    maxBytes,
    valueBytes,
    items,
    budgetBytes: bytes,
    rssGrowthBytes,
    heapTotalGrowthBytes: growth('heapTotal'),
    heapUsedGrowthBytes: growth('heapUsed'),
    externalGrowthBytes: growth('external'),
    overheadPerEntryBytes: rssGrowthBytes / items - valueBytes,
    ratio: maxBytes ? rssGrowthBytes / maxBytes : undefined,
  }
}
