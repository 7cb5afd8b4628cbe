// The app node processes of a demo run: start (and restart) demo/node.mjs as real OS processes,
// read their /stats, kill and stop them. A node's counters start from zero in each process, so
// those of a killed process are kept (as last read, just before the kill) and added to the next.
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NODE_SCRIPT = path.join(HERE, 'node.mjs')
/** The demo's nodes sign their requests to each other (auth) with this secret, made anew for each run. */
const DEMO_SECRET = process.env.PEERCACHE_SECRET || randomBytes(32).toString('base64')
/** Where each node's stdout and stderr go (git-ignored). */
export const LOG_DIR = path.join(HERE, 'logs')
/**
 * Longest wait for a node process to listen, in ms. A node listens in well under a second on an idle
 * machine; on a shared one (tests in parallel, other jobs) starting took over 10 s, so the bound is wide.
 */
const START_TIMEOUT_MS = 30_000
/** Longest wait for a node's /stats, in ms. */
const STATS_TIMEOUT_MS = 800
/** Longest wait for a node to exit after SIGTERM before it gets SIGKILL, in ms. */
const STOP_TIMEOUT_MS = 3000

/** The counters the demo adds up across a node's processes: the app's own and its group's. */
const COUNTERS = [
  'requests',
  'errors',
  'writes',
  'changeEvents',
  'originLoads',
  'gets',
  'mainHits',
  'hotHits',
  'loads',
  'peerLoads',
  'peerErrors',
  'localLoads',
  'serverRequests',
]

function zeroCounters() {
  return Object.fromEntries(COUNTERS.map((c) => [c, 0]))
}

function countersOf(stats) {
  const flat = { ...stats.group, ...stats }
  return Object.fromEntries(COUNTERS.map((c) => [c, Number(flat[c] ?? 0)]))
}

/** `n` ports the OS says are free on 127.0.0.1 now (a moment later one may be taken: then a node fails to start and says so). */
export async function freePorts(n) {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise((resolve, reject) => {
          const s = net.createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => s.address().port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

export class AppNode {
  /** @param {{ id: string, port: number, peers: string[], args?: string[] }} options  args: more node.mjs options */
  constructor({ id, port, peers, args = [] }) {
    this.id = id
    this.port = port
    this.url = `http://127.0.0.1:${port}`
    this.peers = peers
    this.args = args
    /** 'starting' | 'up' | 'killed' (by the chaos step) | 'crashed' | 'stopped' */
    this.state = 'stopped'
    this.child = undefined
    this.starts = 0
    this.banked = zeroCounters()
    this.current = zeroCounters()
  }

  /** Starts the process; resolves when it listens, rejects if it exits or is slow to. */
  async start() {
    fs.mkdirSync(LOG_DIR, { recursive: true })
    const log = fs.openSync(path.join(LOG_DIR, `${this.id}.log`), this.starts === 0 ? 'w' : 'a')
    const args = ['--port', String(this.port), '--peers', this.peers.join(','), '--id', this.id, ...this.args]
    const child = fork(NODE_SCRIPT, args, { stdio: ['ignore', log, log, 'ipc'], env: { ...process.env, PEERCACHE_SECRET: DEMO_SECRET } })
    fs.closeSync(log)
    this.child = child
    this.starts++
    this.state = 'starting'
    this.current = zeroCounters()
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`${this.id} did not start within ${START_TIMEOUT_MS} ms (see ${LOG_DIR}/${this.id}.log)`)),
        START_TIMEOUT_MS,
      )
      const onMessage = (m) => m?.type === 'ready' && done()
      const onExit = (code, signal) =>
        done(new Error(`${this.id} exited (${signal ?? code}) while starting (see ${LOG_DIR}/${this.id}.log)`))
      const done = (err) => {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
        if (err) reject(err)
        else resolve()
      }
      child.on('message', onMessage)
      child.once('exit', onExit)
    })
    this.state = 'up'
    child.once('exit', () => {
      // A death the demo did not cause: show it, and keep what was counted.
      if (this.child === child && this.state === 'up') {
        this.state = 'crashed'
        this.#bank()
      }
    })
  }

  /** Reads /stats; returns the whole JSON or null when the node does not answer. */
  async poll() {
    if (this.state !== 'up') return null
    try {
      const res = await request(`${this.url}/stats`, { headersTimeout: STATS_TIMEOUT_MS, bodyTimeout: STATS_TIMEOUT_MS })
      const stats = await res.body.json()
      if (this.state === 'up') this.current = countersOf(stats)
      return stats
    } catch {
      return null
    }
  }

  /** This node's counters over all its processes, as last read. */
  counters() {
    return Object.fromEntries(COUNTERS.map((c) => [c, this.banked[c] + this.current[c]]))
  }

  /** SIGKILL, after a last read of the counters (what happens between that read and the kill is not counted). */
  async kill() {
    await this.poll()
    this.state = 'killed'
    this.#bank()
    const exited = this.#exited()
    this.child?.kill('SIGKILL')
    await exited
  }

  /** SIGTERM (SIGKILL if it takes too long); the counters are read before. */
  async stop() {
    if (this.state === 'up') await this.poll()
    this.#bank()
    this.state = 'stopped'
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = this.#exited()
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }

  #bank() {
    for (const c of COUNTERS) this.banked[c] += this.current[c]
    this.current = zeroCounters()
  }

  #exited() {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => child.once('exit', resolve))
  }
}

/** Starts `count` nodes n1..nN on free ports, each knowing all the others. */
export async function startNodes(count) {
  const ports = await freePorts(count)
  const peers = ports.map((p) => `http://127.0.0.1:${p}`)
  const nodes = ports.map((port, i) => new AppNode({ id: `n${i + 1}`, port, peers }))
  try {
    await Promise.all(nodes.map((n) => n.start()))
  } catch (err) {
    await stopNodes(nodes)
    throw err
  }
  return nodes
}

export async function stopNodes(nodes) {
  await Promise.allSettled(nodes.map((n) => n.stop()))
}

/** Cluster-wide origin loads as last read. */
export function originLoadsOf(nodes) {
  return nodes.reduce((sum, n) => sum + n.counters().originLoads, 0)
}
