// Once a second, one sample of the cluster for the live views (terminal and web): every node's
// /stats read, turned into rates over the last second and totals since the start. Both views draw
// the same sample, so they never disagree.
import { setTimeout as sleep } from 'node:timers/promises'
import { percentile } from './load.mjs'
import { dedupFactor } from './table.mjs'

/** Counters whose change over the last second a sample shows as a rate or a hit ratio. */
const RATES = ['requests', 'gets', 'mainHits', 'hotHits', 'peerLoads', 'originLoads', 'changeEvents']

/**
 * One row of a sample: a node, or `all` of them.
 * @typedef {object} Row
 * @property {string} id 'n1'... or 'all'
 * @property {string} state the process: 'up' | 'starting' | 'killed' | 'crashed' | 'stopped' ('' for all)
 * @property {number} requestsPerS answered requests (as the balancer got them), per second over the last second
 * @property {number | null} mainHitPct % of the gets of the last second answered by the main cache (null: no get)
 * @property {number | null} hotHitPct % of the gets of the last second answered by the hot cache
 * @property {number} peerFetchesPerS values fetched from their owner, per second over the last second
 * @property {number} originLoadsPerS origin loads, per second over the last second
 * @property {number | null} p50Ms latency of the last second's requests as the balancer saw it, in ms (null: none)
 * @property {number | null} p99Ms likewise
 * @property {number} requests answered requests since the start (all of a node's processes)
 * @property {number} peerFetches values fetched from their owner since the start
 * @property {number} originLoads origin loads since the start
 * @property {number} changeEvents change events the node heard since the start (sets and removes made on any node)
 */

export class Sampler {
  /**
   * @param {{ nodes: import('./nodes.mjs').AppNode[], record: object, durationMs: number }} options
   *   record: the load's live record (demo/load.mjs, with windows); each sample empties its per-node windows
   */
  constructor({ nodes, record, durationMs }) {
    this.nodes = nodes
    this.record = record
    this.durationMs = durationMs
    this.idOf = new Map(nodes.map((n) => [n.url, n.id]))
    this.previousAt = performance.now()
    this.previous = new Map(nodes.map((n) => [n.id, this.#totals(n)]))
  }

  /**
   * Reads every node and returns the sample of second `second` of the run: `nodes` (Row and the
   * node's url and `health`, what its peercache thinks of its peers), `all` (the cluster as one
   * Row) and `run` (the load generator's totals since the start).
   */
  async sample(second) {
    const stats = await Promise.all(this.nodes.map((n) => n.poll()))
    const now = performance.now()
    const seconds = Math.max(0.001, (now - this.previousAt) / 1000)
    this.previousAt = now
    const parts = this.nodes.map((n) => this.#change(n))
    const nodes = this.nodes.map((n, i) => ({
      ...row(n.id, n.state, parts[i], seconds),
      url: n.url,
      health: (stats[i]?.health ?? []).map((h) => ({ peer: this.idOf.get(h.peer) ?? h.peer, state: h.state })),
    }))
    const r = this.record
    const all = row('all', '', sum(parts), seconds)
    return {
      second,
      durationS: Math.round(this.durationMs / 1000),
      nodes,
      all,
      run: {
        requests: r.requests,
        answered: r.answered,
        failed: r.failed,
        retries: r.retries,
        originLoads: all.originLoads,
        dedup: dedupFactor(r.answered, all.originLoads),
      },
    }
  }

  /** A node's totals now, what changed since the last sample, and the latencies of the last second. */
  #change(node) {
    const now = this.#totals(node)
    const before = this.previous.get(node.id)
    this.previous.set(node.id, now)
    const delta = Object.fromEntries(RATES.map((c) => [c, now[c] - before[c]]))
    return { now, delta, latencies: this.record.nodes.get(node.id).window.splice(0) }
  }

  /** The node's counters, with `requests` as the balancer counted the node's answers. */
  #totals(node) {
    return { ...node.counters(), requests: this.record.nodes.get(node.id).requests }
  }
}

/** @returns {Row} */
function row(id, state, { now, delta, latencies }, seconds) {
  const perS = (c) => Math.round(delta[c] / seconds)
  return {
    id,
    state,
    requestsPerS: perS('requests'),
    mainHitPct: pct(delta.mainHits, delta.gets),
    hotHitPct: pct(delta.hotHits, delta.gets),
    peerFetchesPerS: perS('peerLoads'),
    originLoadsPerS: perS('originLoads'),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    requests: now.requests,
    peerFetches: now.peerLoads,
    originLoads: now.originLoads,
    changeEvents: now.changeEvents,
  }
}

/** The nodes' changes added up, as one node's. */
function sum(parts) {
  const add = (pick) => Object.fromEntries(RATES.map((c) => [c, parts.reduce((s, p) => s + pick(p)[c], 0)]))
  return { now: add((p) => p.now), delta: add((p) => p.delta), latencies: parts.flatMap((p) => p.latencies) }
}

/** part / whole in whole percent; null when there is nothing to divide. */
function pct(part, whole) {
  return whole > 0 ? Math.round((100 * part) / whole) : null
}

/**
 * Calls `each(second)` once per whole second of the run (1, 2, ...) until `done` settles, and once
 * more then if a new second has begun (so the last frame shows the end of the run). Never twice for
 * one second: a timer may fire a little early, so it waits until the second has really passed; a
 * second missed while the machine was busy (a slow `each`) is skipped, not caught up on.
 * @param {() => number} elapsed ms since the start of the run
 * @param {Promise<unknown>} done
 * @param {(second: number) => Promise<void>} each
 */
export async function everySecond(elapsed, done, each) {
  let finished = false
  const end = done.then(
    () => (finished = true),
    () => (finished = true),
  )
  let second = 0
  while (!finished) {
    const due = (second + 1) * 1000
    while (!finished && elapsed() < due) await Promise.race([sleep(due - elapsed()), end])
    const now = Math.floor(elapsed() / 1000)
    if (now > second) await each((second = now))
  }
}
