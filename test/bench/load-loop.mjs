// A closed-loop load generator: `concurrency` callers, each starting its next operation when the
// previous one ends, until `maxOps` operations or `maxMs` have passed, whichever comes first.
// Every operation's latency is kept, so percentiles are exact.
import { performance } from 'node:perf_hooks'
import { quantile } from './stats.mjs'

/**
 * @param {object} o
 * @param {(key: string) => Promise<unknown>} o.op  one operation (a get)
 * @param {string[]} o.keys  operation i uses keys[i % keys.length], so concurrent operations use different keys
 * @param {number} o.concurrency  operations in flight at once
 * @param {number} o.maxOps  stop after this many operations
 * @param {number} o.maxMs  or after this long, in ms
 * @param {number} [o.warmupMs]  an unrecorded run of this length first (JIT, connections), default 0
 */
export async function closedLoop({ op, keys, concurrency, maxOps, maxMs, warmupMs = 0 }) {
  if (warmupMs > 0) await drive({ op, keys, concurrency, maxOps, maxMs: warmupMs, latencies: undefined })
  const latencies = new Float64Array(maxOps)
  const started = performance.now()
  const ops = await drive({ op, keys, concurrency, maxOps, maxMs, latencies })
  const elapsedMs = performance.now() - started
  const sorted = latencies.subarray(0, ops).sort()
  return {
    ops,
    elapsedMs,
    opsPerSec: ops / (elapsedMs / 1000),
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
    maxUs: sorted[ops - 1] * 1000,
  }
}

async function drive({ op, keys, concurrency, maxOps, maxMs, latencies }) {
  const deadline = performance.now() + maxMs
  let issued = 0
  let done = 0
  const caller = async () => {
    while (issued < maxOps && performance.now() < deadline) {
      const key = keys[issued++ % keys.length]
      const t0 = performance.now()
      await op(key)
      const ms = performance.now() - t0
      if (latencies !== undefined) latencies[done] = ms
      done++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, caller))
  return done
}
