// What the numbers were measured on. The load average says how busy the (shared) machine was.
import os from 'node:os'
import { redisVersion } from './redis-server.mjs'

export function describeMachine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion() ?? 'not installed',
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    date: new Date().toISOString(),
  }
}

export function machineLine(m) {
  return `${m.cpu}, ${m.cpus} CPUs, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, ${m.redis}; load average ${m.loadAverage.join(' ')}`
}
