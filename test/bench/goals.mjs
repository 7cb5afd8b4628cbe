// The goals of issues 6 and 13, checked against one run's results (ratios from the same run).

/** [{ goal, target, measured, met }] for every goal whose scenario ran; met is undefined when it cannot be judged. */
export function checkGoals(results) {
  const goals = []
  const add = (goal, target, measured, met) => goals.push({ goal, target, measured, met })
  const { localHit, remoteHit, stampede, zipf, memory } = results
  if (localHit && !localHit.error) add('local hit vs lru-cache', '<= 1.5x', `${localHit.ratio.toFixed(2)}x`, localHit.ratio <= 1.5)
  if (Array.isArray(remoteHit)) {
    const row = (contestant, concurrency) =>
      remoteHit.find((r) => r.contestant === contestant && r.concurrency === concurrency && r.valueBytes === 100)
    const pc64 = row('peercache', 64)
    const redis64 = row('ioredis', 64)
    const throughput = redis64 ? pc64.opsPerSec / redis64.opsPerSec : undefined
    const p99 = redis64 ? pc64.p99Us / redis64.p99Us : undefined
    add(
      'remote hit 100 B, 64 concurrent: ops/s vs ioredis',
      '>= 1.0x',
      throughput === undefined ? 'no Redis' : `${throughput.toFixed(2)}x`,
      throughput === undefined ? undefined : throughput >= 1,
    )
    add(
      'remote hit 100 B, 64 concurrent: p99 vs ioredis',
      '<= 1.1x',
      p99 === undefined ? 'no Redis' : `${p99.toFixed(2)}x`,
      p99 === undefined ? undefined : p99 <= 1.1,
    )
    const pc16 = row('peercache', 16)
    add('remote hit 100 B, 16 concurrent: p99', '< 2000 µs', `${Math.round(pc16.p99Us)} µs`, pc16.p99Us < 2000)
  }
  if (stampede && !stampede.error)
    add('stampede: origin loads', `= ${stampede.keys}`, String(stampede.originLoads), stampede.originLoads === stampede.keys)
  if (Array.isArray(zipf)) {
    const hot = zipf.find((r) => r.hotReplicas)
    add('zipf: busiest process vs mean, hot replicas on', '<= 1.25x', `${hot.busiestToMean.toFixed(2)}x`, hot.busiestToMean <= 1.25)
  }
  if (memory && !memory.error) add('memory: RSS growth / maxBytes', '<= 1.3x', `${memory.ratio.toFixed(2)}x`, memory.ratio <= 1.3)
  if (Array.isArray(remoteHit)) remoteHitTargets(remoteHit, add)
  if (memory && !memory.error) memoryTargets(memory, add)
  return goals
}

/** Issue 13's remote-hit targets: each a ratio to Redis + ioredis (or its auto-pipelining) in the same run. */
function remoteHitTargets(rows, add) {
  const row = (contestant, concurrency, valueBytes = 100) =>
    rows.find((r) => r.contestant === contestant && r.concurrency === concurrency && r.valueBytes === valueBytes)
  const vs = (goal, target, field, concurrency, valueBytes, anchor, limit, atLeast) => {
    const pc = row('peercache', concurrency, valueBytes)
    const a = row(anchor, concurrency, valueBytes)
    if (!pc || !a) return add(`${goal} (issue 13)`, target, 'no Redis', undefined)
    const r = pc[field] / a[field]
    add(`${goal} (issue 13)`, target, `${r.toFixed(2)}x`, atLeast ? r >= limit : r <= limit)
  }
  vs('remote hit 100 B, 1 concurrent: p50 vs ioredis', '<= 1.3x', 'p50Us', 1, 100, 'ioredis', 1.3, false)
  vs('remote hit 100 B, 16 concurrent: ops/s vs ioredis', '>= 1.0x', 'opsPerSec', 16, 100, 'ioredis', 1.0, true)
  vs('remote hit 100 B, 16 concurrent: p99 vs ioredis', '<= 1.5x', 'p99Us', 16, 100, 'ioredis', 1.5, false)
  vs('remote hit 100 B, 64 concurrent: ops/s vs ioredis', '>= 1.0x (3 runs)', 'opsPerSec', 64, 100, 'ioredis', 1.0, true)
  vs('remote hit 100 B, 64 concurrent: ops/s vs auto-pipelining', '>= 0.8x', 'opsPerSec', 64, 100, 'ioredis-autopipeline', 0.8, true)
  vs('remote hit 100 B, 64 concurrent: p99 vs ioredis', '<= 1.5x', 'p99Us', 64, 100, 'ioredis', 1.5, false)
  vs('remote hit 10 KiB, 64 concurrent: ops/s vs ioredis', '>= 0.8x', 'opsPerSec', 64, 10240, 'ioredis', 0.8, true)
  vs('remote hit 10 KiB, 64 concurrent: p99 vs ioredis', '<= 3x', 'p99Us', 64, 10240, 'ioredis', 3, false)
}

/** Issue 13's memory targets: 100-byte values, and 1 KiB values when just full and after churn. */
function memoryTargets(memory, add) {
  if (memory.small) {
    const per = memory.small.overheadPerEntryBytes
    add('memory, 100 B values: RSS per entry beyond the value (issue 13)', '<= 300 B', `${Math.round(per)} B`, per <= 300)
  }
  const churned = memory.afterChurn?.ratio
  if (churned !== undefined)
    add('memory, 1 KiB values after churn: RSS growth / maxBytes (issue 13)', '<= 1.3x', `${churned.toFixed(2)}x`, churned <= 1.3)
}
