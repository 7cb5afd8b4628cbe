// The live terminal view: one frame per second of the run, drawn from the sampler's sample. The
// columns are grouped under "last second" (rates, hit ratios and latencies of that second) and
// "since start" (totals). On a terminal the frame is redrawn in place; otherwise (a pipe, a file,
// CI) each frame is printed as plain text, followed by a blank line.
import { table } from './table.mjs'

/** Columns: header, the Row field shown, and the group it sits under. */
const COLUMNS = [
  ['node', 'id'],
  ['state', 'state'],
  ['req/s', 'requestsPerS', 'last'],
  ['main-hit', 'mainHitPct', 'last'],
  ['hot-hit', 'hotHitPct', 'last'],
  ['origin loads/s', 'originLoadsPerS', 'last'],
  ['p50 ms', 'p50Ms', 'last'],
  ['p99 ms', 'p99Ms', 'last'],
  ['peer fetches', 'peerFetches', 'total'],
  ['origin loads', 'originLoads', 'total'],
]
const GROUPS = { last: 'last second', total: 'since start' }
/** Chaos and other events shown under the table (the latest ones). */
const KEEP_EVENTS = 4

const STATE_TEXT = { up: 'up', starting: 'starting', killed: 'DOWN (killed)', crashed: 'DOWN (crashed)', stopped: 'stopped' }

export class LiveView {
  /** @param {{ out: NodeJS.WriteStream, title: string }} options */
  constructor({ out, title }) {
    this.out = out
    this.title = title
    this.tty = Boolean(out.isTTY)
    this.events = []
    /** Screen lines of the frame on screen (a terminal only), to move back up over it. */
    this.drawnLines = 0
  }

  /** Something happened (the chaos step): shown under the table from now on. */
  event(elapsedMs, text) {
    this.events.push(`${(elapsedMs / 1000).toFixed(1).padStart(5)} s  ${text}`)
    if (this.events.length > KEEP_EVENTS) this.events.shift()
    if (!this.tty) this.out.write(`${this.events.at(-1)}\n`)
  }

  /** Draws the frame of one sample (demo/sampler.mjs). */
  draw(sample) {
    const rows = [...sample.nodes, sample.all].map((r) =>
      COLUMNS.map(([, field]) => (field === 'state' ? (STATE_TEXT[r.state] ?? r.state) : percentText(field, r[field]))),
    )
    const groups = COLUMNS.map(([, , group]) => (group ? GROUPS[group] : undefined))
    const run = sample.run
    const lines = [
      `${this.title} · ${sample.second} s of ${sample.durationS} s`,
      ...table(
        COLUMNS.map(([header]) => header),
        rows,
        2,
        groups,
      ),
      `since start: ${run.requests} requests · ${run.answered} answered · ${run.failed} failed · ${run.retries} retried on another node · ${run.dedup ?? '-'} requests per origin load`,
      ...(this.tty ? this.events : []),
    ]
    this.#draw(lines)
  }

  #draw(lines) {
    if (!this.tty) return void this.out.write(`${lines.join('\n')}\n\n`)
    // A line wider than the terminal would wrap onto a second screen line and the next redraw would
    // move up one line short, leaving a line of this frame behind: cut every line to the width.
    const width = Math.max(20, (this.out.columns || 80) - 1)
    const fitted = lines.map((l) => (l.length > width ? l.slice(0, width) : l))
    // Up to the first line of the previous frame, clear from there down, draw anew.
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[J` : ''
    this.out.write(`${up}${fitted.join('\n')}\n`)
    this.drawnLines = fitted.length
  }
}

/** Hit ratios get their % sign; the rest shows as the table shows numbers. */
function percentText(field, value) {
  return value !== null && field.endsWith('Pct') ? `${value}%` : value
}
