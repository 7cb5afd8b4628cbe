// The live terminal view, about once a second: per node the last second's requests/s, main-hit
// and hot-hit %, latency p50/p99 (as the balancer saw it), the node's peer fetches and origin
// loads so far; cluster-wide the dedup factor (requests per origin load). On a terminal the table
// is redrawn in place; otherwise (a pipe, a file, CI) each refresh is printed as plain text.
import { percentile } from './load.mjs'
import { dedupFactor, percent, table } from './table.mjs'

const HEADERS = ['node', 'state', 'req/s', 'main-hit', 'hot-hit', 'peer fetches', 'origin loads', 'p50 ms', 'p99 ms']
/** Chaos and other events shown under the table (the latest ones). */
const KEEP_EVENTS = 4

const STATE_TEXT = { up: 'up', starting: 'starting', killed: 'DOWN (killed)', crashed: 'DOWN (crashed)', stopped: 'stopped' }

export class LiveView {
  /**
   * @param {{ out: NodeJS.WriteStream, nodes: import('./nodes.mjs').AppNode[], record: object, title: string, durationMs: number }} options
   */
  constructor({ out, nodes, record, title, durationMs }) {
    this.out = out
    this.nodes = nodes
    this.record = record
    this.title = title
    this.durationMs = durationMs
    this.tty = Boolean(out.isTTY)
    this.events = []
    this.drawnLines = 0
    this.previous = { at: performance.now(), requests: 0, nodes: new Map(nodes.map((n) => [n.id, { ...n.counters(), answered: 0 }])) }
  }

  /** Something happened (the chaos step): shown under the table from now on. */
  event(elapsedMs, text) {
    this.events.push(`${(elapsedMs / 1000).toFixed(1).padStart(5)} s  ${text}`)
    if (this.events.length > KEEP_EVENTS) this.events.shift()
    if (!this.tty) this.out.write(`${this.events.at(-1)}\n`)
  }

  /** Reads every node's /stats and draws one refresh. */
  async refresh(elapsedMs) {
    await Promise.all(this.nodes.map((n) => n.poll()))
    const now = performance.now()
    const seconds = Math.max(0.001, (now - this.previous.at) / 1000)
    const rows = this.nodes.map((n) => this.#row(n, seconds))
    const r = this.record
    const loads = this.nodes.reduce((sum, n) => sum + n.counters().originLoads, 0)
    const rate = Math.round((r.requests - this.previous.requests) / seconds)
    this.previous.at = now
    this.previous.requests = r.requests
    const lines = [
      `${this.title} · ${(elapsedMs / 1000).toFixed(0)} s of ${(this.durationMs / 1000).toFixed(0)} s`,
      ...table(HEADERS, rows),
      `cluster: ${rate} req/s · requests ${r.requests} · answered ${r.answered} · failed ${r.failed} · retried on another node ${r.retries} · origin loads ${loads} · dedup ${dedupFactor(r.answered, loads) ?? '-'}x`,
      ...(this.tty ? this.events : []),
    ]
    this.#draw(lines)
  }

  #row(node, seconds) {
    const now = { ...node.counters(), answered: this.record.nodes.get(node.id).requests }
    const before = this.previous.nodes.get(node.id)
    this.previous.nodes.set(node.id, now)
    const window = this.record.nodes.get(node.id).window.splice(0)
    const gets = now.gets - before.gets
    return [
      node.id,
      STATE_TEXT[node.state] ?? node.state,
      Math.round((now.answered - before.answered) / seconds),
      percent(now.mainHits - before.mainHits, gets),
      percent(now.hotHits - before.hotHits, gets),
      now.peerLoads,
      now.originLoads,
      percentile(window, 50),
      percentile(window, 99),
    ]
  }

  #draw(lines) {
    if (!this.tty) return void this.out.write(`${lines.join('\n')}\n\n`)
    // Up to the first line of the previous refresh, clear from there down, draw anew.
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[J` : ''
    this.out.write(`${up}${lines.join('\n')}\n`)
    this.drawnLines = lines.length
  }
}
