// The goals of issue 6, checked against one run's results (ratios from the same run).

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
  return goals
}
