// The Grafana dashboard (demo/grafana/peercache.json) parses, has the panels an operator needs, and
// every expression in it names only metrics and labels that peer.registerMetrics exports. (The real
// Prometheus test, prometheus.test.ts, also runs each expression through Prometheus's own parser.)
import fs from 'node:fs'
import { Registry } from 'prom-client'
import t from 'tap'
import { Peer } from '../lib/index.js'
import { DASHBOARD_FILE, dashboardExpressions, selection } from './helpers/promql.js'

/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = ['instance', 'job']

/** Every series name a registry exports (a histogram's _bucket, _sum and _count), with its label names. */
async function exportedSeries(registry: Registry): Promise<Map<string, string[]>> {
  const series = new Map<string, string[]>()
  for (const metric of registry.getMetricsAsArray()) {
    const { name, type } = await (metric as unknown as { get(): Promise<{ name: string; type: string }> }).get()
    const labels = (metric as unknown as { labelNames: string[] }).labelNames
    if (type === 'histogram') {
      series.set(`${name}_bucket`, [...labels, 'le'])
      series.set(`${name}_sum`, labels)
      series.set(`${name}_count`, labels)
    } else series.set(name, labels)
  }
  return series
}

t.test('selection() reads metric and label names out of PromQL', async (t) => {
  t.same(selection('sum by (instance) (rate(peercache_gets_total{group=~"$group",source=~"main|hot"}[$__rate_interval]))'), {
    metrics: ['peercache_gets_total'],
    labels: ['group', 'source', 'instance'],
  })
  t.same(selection('histogram_quantile(0.99, sum by (le, peer) (rate(x_bucket{a="b"}[5m]))) / y + 1e3'), {
    metrics: ['x_bucket', 'y'],
    labels: ['a', 'le', 'peer'],
  })
  t.same(selection('label_values(peercache_members{job="p"}, instance)'), { metrics: ['peercache_members'], labels: ['job', 'instance'] })
})

t.test('the dashboard parses and names only metrics and labels that registerMetrics exports', async (t) => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'))
  const titles = (dashboard.panels as { title: string }[]).map((p) => p.title.toLowerCase())
  for (const needed of ['hit ratio', 'origin loads/s', 'loads saved', 'peer fetch p99', 'peer health', 'cache bytes', 'evictions/s'])
    t.ok(titles.includes(needed), `a panel "${needed}"`)

  const registry = new Registry()
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  peer.registerMetrics(registry)
  const series = await exportedSeries(registry)

  const exprs = dashboardExpressions(dashboard)
  t.ok(exprs.length >= titles.length, `${exprs.length} expressions, at least one per panel`)
  for (const expr of exprs) {
    const { metrics, labels } = selection(expr)
    t.ok(metrics.length > 0, `names a metric: ${expr}`)
    const unknown = metrics.filter((m) => !series.has(m))
    t.same(unknown, [], `only exported metrics: ${expr}`)
    const known = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => series.get(m) ?? [])])
    t.same(
      labels.filter((l) => !known.has(l)),
      [],
      `only labels those metrics have: ${expr}`,
    )
  }
  t.notOk(series.has('peercache_nope_total'), 'a made-up name would be reported')
})
