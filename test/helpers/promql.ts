// Just enough PromQL reading to check a dashboard against the metrics a registry exports: which
// metric names an expression selects, and which label names it matches or groups by. Not a parser:
// it relies on the dashboard's plain style (no subqueries, no @ modifiers).

/** The Grafana dashboard in the repository. */
export const DASHBOARD_FILE = new URL('../../demo/grafana/peercache.json', import.meta.url)

export interface Selection {
  /** Metric names as written (a histogram's `_bucket`, `_sum` or `_count` series included). */
  metrics: string[]
  /** Label names used in matchers (`{group=~"..."}`) and in `by`/`without`/`on`/`ignoring` clauses. */
  labels: string[]
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/g
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
])

/** What `expr` selects. Grafana's `label_values(selector, label)` is read as a selector plus a label. */
export function selection(expr: string): Selection {
  const labels: string[] = []
  const grafana = /^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(expr)
  if (grafana) {
    const inner = selection(grafana[1]!)
    return { metrics: inner.metrics, labels: [...inner.labels, grafana[2]!] }
  }
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  rest = rest.replace(/\{([^}]*)\}/g, (_, matchers: string) => {
    for (const m of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]!)
    return ' '
  })
  rest = rest.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, names: string) => {
    labels.push(
      ...names
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean),
    )
    return ' '
  })
  rest = rest.replace(/\[[^\]]*\]/g, ' ')
  const metrics: string[] = []
  for (const m of rest.matchAll(NAME)) {
    const after = rest.slice(m.index! + m[0].length).trimStart()
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue // a function, an aggregation or a keyword
    if (/[0-9.]$/.test(rest.slice(0, m.index!))) continue // the exponent of a number such as 1e3
    metrics.push(m[0])
  }
  return { metrics, labels }
}

/** Every PromQL expression in a Grafana dashboard: panel targets (rows' panels too) and query variables. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const d = dashboard as {
    panels?: { targets?: { expr?: string }[]; panels?: unknown[] }[]
    templating?: { list?: { type?: string; query?: string | { query?: string } }[] }
  }
  const exprs: string[] = []
  const walk = (panels: typeof d.panels) => {
    for (const p of panels ?? []) {
      for (const target of p.targets ?? []) if (typeof target.expr === 'string') exprs.push(target.expr)
      walk(p.panels as typeof d.panels)
    }
  }
  walk(d.panels)
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    if (q) exprs.push(q)
  }
  return exprs
}
