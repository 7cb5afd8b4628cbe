// The load generator: GET /users/:id through the balancer at a bounded rate and concurrency, ids
// drawn Zipf-skewed, every answer checked against the origin's record; every `writeEvery`-th
// request is a write instead (PUT of the user's record, or DELETE of the user, in turn), which every
// node hears of as a change event. It stops by itself after
// `durationMs` (or when `signal` aborts) and then waits for the requests under way, each bounded
// by the balancer's timeouts.
import { setTimeout as sleep } from 'node:timers/promises'
import { userRecord } from './origin.mjs'

/** How often the scheduler wakes up to send what the rate allows, in ms. */
const TICK_MS = 10
/** Failure reasons kept for the summary; the rest are only counted. */
const KEEP_FAILURES = 5

/** Per-node answers: counts, all latencies (for the summary) and, for a live view, those since it last looked. */
function nodeRecord() {
  return { requests: 0, latencies: [], window: [] }
}

/**
 * Runs the load and resolves with its record when done. `record` is live while it runs, for the view.
 * @param {{ balancer: import('./balancer.mjs').Balancer, nextId: () => number, rate: number,
 *   concurrency: number, durationMs: number, nodeIds: string[], windows?: boolean, signal?: AbortSignal }} options
 *   rate in requests per second; concurrency: most requests under way at once;
 *   windows: also keep each node's latencies in `window`, for a reader that empties it (default false);
 *   writeEvery: every writeEvery-th request is a write, not a get (0: none; default 0)
 */
export function startLoad({ balancer, nextId, rate, concurrency, durationMs, nodeIds, windows = false, signal, writeEvery = 0 }) {
  const record = {
    /** Requests sent (each may have been retried once on another node). */
    requests: 0,
    /** Requests with a correct answer. */
    answered: 0,
    /** Requests with no correct answer: both nodes down, an error status, or a wrong body. */
    failed: 0,
    failures: [],
    inFlight: 0,
    /** Writes sent (PUT or DELETE of a user; not counted in requests), and those that got no 200. */
    writes: 0,
    writeFailures: 0,
    nodes: new Map(nodeIds.map((id) => [id, nodeRecord()])),
    get retries() {
      return balancer.retries
    },
  }

  function fail(reason) {
    record.failed++
    if (record.failures.length < KEEP_FAILURES) record.failures.push(reason)
  }

  let sent = 0

  /** A PUT of the user's own record (the next GET still gets the right one), or a DELETE (it is loaded again). */
  async function write(id) {
    record.writes++
    const put = record.writes % 2 === 1
    try {
      const { status } = await balancer.request(put ? 'PUT' : 'DELETE', `/users/${id}`, put ? userRecord(id) : undefined)
      if (status !== 200) record.writeFailures++
    } catch {
      record.writeFailures++
    }
  }

  async function one() {
    const id = nextId()
    if (writeEvery > 0 && ++sent % writeEvery === 0) return write(id)
    const start = performance.now()
    record.requests++
    record.inFlight++
    try {
      const { node, status, body } = await balancer.get(`/users/${id}`)
      const ms = performance.now() - start
      if (status !== 200) return fail(`GET /users/${id}: HTTP ${status} from ${node}: ${body.slice(0, 120)}`)
      if (body !== userRecord(id)) return fail(`GET /users/${id}: wrong record from ${node}: ${body.slice(0, 120)}`)
      record.answered++
      const n = record.nodes.get(node)
      n.requests++
      n.latencies.push(ms)
      if (windows) n.window.push(ms)
    } catch (err) {
      fail(`GET /users/${id}: no node answered: ${err?.code ?? ''} ${err?.message ?? err}`)
    } finally {
      record.inFlight--
    }
  }

  async function run() {
    const pending = new Set()
    const end = performance.now() + durationMs
    let last = performance.now()
    let budget = 0
    while (!signal?.aborted) {
      const now = performance.now()
      if (now >= end) break
      // Open loop, as users are: the rate accrues whether or not the cluster keeps up, so a stall
      // is caught up on (at most one second's worth, and never more than `concurrency` at once).
      budget = Math.min(budget + ((now - last) / 1000) * rate, rate)
      last = now
      while (budget >= 1 && pending.size < concurrency) {
        budget--
        const p = one().finally(() => pending.delete(p))
        pending.add(p)
      }
      await sleep(TICK_MS)
    }
    await Promise.all(pending)
    return record
  }

  return { record, done: run() }
}

/** The p-th percentile (0-100) of `values` in ms, rounded to 0.1; null when there are none. */
export function percentile(values, p) {
  if (values.length === 0) return null
  const sorted = Float64Array.from(values).sort()
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round(sorted[i] * 10) / 10
}
