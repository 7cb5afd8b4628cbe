// The metrics as Prometheus itself sees them: promtool accepts what /metrics serves, and a real
// Prometheus scraping a 3-peer cluster every second reports the hit ratio and the origin loads per
// second of the traffic this test made, and parses every expression of the Grafana dashboard.
// Needs Debian's prometheus package (installed here when missing); skips with one line otherwise.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import t from 'tap'
import { ensureDebianCommand } from './helpers/debian.js'
import { startGroupCluster } from './helpers/inproc.js'
import { freePort } from './helpers/net.js'
import { numberedKeys } from './helpers/peers.js'
import { serveMetrics, startPrometheus } from './helpers/prometheus.js'
import { DASHBOARD_FILE, dashboardExpressions } from './helpers/promql.js'

const prometheus = ensureDebianCommand('prometheus', 'prometheus')
const promtool = ensureDebianCommand('promtool', 'prometheus')
if ('skip' in prometheus) t.skip(prometheus.skip, () => {})
else if ('skip' in promtool) t.skip(promtool.skip, () => {})
else {
  /** Keys per peer, each owned by that peer. */
  const KEYS = 20
  /** Gets of each own key: the first loads it, the others hit the main cache. */
  const READS = 4

  t.test('promtool and a real Prometheus scraping a 3-peer cluster', async (t) => {
    // One replica and no hot cache: a get is a load or a main-cache hit at the owner, a peer fetch elsewhere.
    const c = await startGroupCluster(t, 3, { replicas: 1, hotCacheRatio: 0 })
    const registries = c.peers.map((p) => {
      const registry = new Registry()
      p.registerMetrics(registry)
      return registry
    })
    const targets = await Promise.all(registries.map((r) => serveMetrics(t, r)))

    await t.test('promtool check metrics accepts every node’s output', async (t) => {
      await c.groups[0]!.get('warm-up') // some values, so that every kind of series has samples
      for (const [i, r] of registries.entries()) {
        const run = spawnSync(promtool.path, ['check', 'metrics'], { input: await r.metrics(), encoding: 'utf8' })
        t.equal(run.status, 0, `node ${i}: ${run.stdout}${run.stderr}`.trim())
      }
    })

    const prom = await startPrometheus(t, prometheus.path, targets)
    await prom.until('sum(up{job="peercache"})', (s) => s[0]?.value === 3, 'all 3 targets up')
    // Two scrapes with the counters before the traffic, so the rate's window starts from them.
    await prom.until('count_over_time(peercache_members[1m])', (s) => s.length === 3 && s.every((x) => x.value >= 2), '2 scrapes of each')
    const before = await totals(prom.query)
    const loadsBefore = c.origin.count()

    const own = c.peers.map((_, i) => [...keysOwnedBy(c.ownerIndex, i)])
    const started = Date.now()
    for (const [i, g] of c.groups.entries()) for (const key of own[i]!) for (let r = 0; r < READS; r++) await g.get(key)
    // Then every peer asks once for every other peer's keys: peer fetches, no loads (the owners hold them).
    for (const [i, g] of c.groups.entries()) for (const [j, keys] of own.entries()) if (j !== i) for (const key of keys) await g.get(key)
    const ended = Date.now()

    const loads = 3 * KEYS
    const gets = 3 * (KEYS * READS + 2 * KEYS)
    const hits = 3 * KEYS * (READS - 1)
    t.equal(c.origin.count() - loadsBefore, loads, 'the traffic made one origin load per key')
    const after = await prom.until(
      'sum(peercache_gets_total)',
      (s) => s[0]?.value === before.gets + gets,
      'Prometheus has scraped the counters after the traffic',
    )
    t.equal(after[0]!.value - before.gets, gets, 'Prometheus counted every get')
    const scraped = await totals(prom.query)
    t.equal(scraped.loads - before.loads, loads, 'and every origin load')
    t.equal(scraped.hits - before.hits, hits, 'and every cache hit')
    const ratio = await prom.query('sum(peercache_gets_total{source=~"main|hot|stale"}) / sum(peercache_gets_total)')
    t.equal(ratio[0]!.value, (before.hits + hits) / (before.gets + gets), `hit ratio from the counters: ${ratio[0]!.value}`)

    // Rates over a window that holds the whole traffic, starting 4 s before it (samples of the counters
    // before any of it) and ending 4 s after it.
    const windowS = Math.max(12, Math.ceil((ended - started) / 1000) + 8)
    const at = ended + 4000
    await prom.until('time()', (s) => (s[0]?.value ?? 0) * 1000 > at + 2000, 'Prometheus has samples after the window')
    // Read through the Grafana dashboard's own panels, as an operator would see them.
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'))
    const panel = async (title: string, legend: string) => {
      const samples = await prom.query(expand(panelTarget(dashboard, title, legend), `${windowS}s`), at)
      return samples.reduce((sum, x) => sum + x.value, 0)
    }
    const loadRate = await panel('Origin loads/s', '{{instance}} {{outcome}}')
    // rate() extrapolates the increase from the window's samples to its end, by at most 1.1 average
    // scrape intervals (and not below zero at its start, where the counters were 0). With n samples
    // of a target in the window, the loads it reports are from `loads` to loads * (1 + 1.1 / (n - 1)).
    const n = (await prom.query(`min(count_over_time(up{job="peercache"}[${windowS}s]))`, at))[0]!.value
    t.ok(
      loadRate * windowS >= loads * 0.99 && loadRate * windowS <= loads * (1 + 1.1 / (n - 1)) * 1.01,
      `the dashboard's origin loads/s over ${windowS} s (${n} scrapes), summed: ${loadRate.toFixed(3)} (the traffic: ${loads} loads, ${(loads / windowS).toFixed(3)}/s)`,
    )
    const rateRatio = await panel('Hit ratio', 'cluster')
    t.ok(
      Math.abs(rateRatio - hits / gets) < 0.05,
      `the dashboard's cluster hit ratio over ${windowS} s: ${rateRatio.toFixed(3)} (the traffic: ${hits / gets})`,
    )
    t.equal(scraped.fetches - before.fetches, 3 * 2 * KEYS, 'peer fetches: every peer asked for every other peer’s keys once')

    await t.test('Prometheus parses every expression of the Grafana dashboard', async (t) => {
      for (const expr of dashboardExpressions(dashboard)) {
        const promql = expand(expr, '1m')
        const samples = await prom.query(promql).catch((err: Error) => err)
        t.notOk(samples instanceof Error, `${promql}${samples instanceof Error ? `: ${samples.message}` : ''}`)
      }
    })
  })

  t.test('a demo node serves /metrics, which promtool accepts', async (t) => {
    const port = await freePort()
    const node = spawn(process.execPath, [fileURLToPath(new URL('../demo/node.mjs', import.meta.url)), '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = new Promise((resolve) => node.once('exit', resolve))
    t.teardown(async () => {
      if (node.exitCode === null && node.signalCode === null) node.kill('SIGTERM')
      await exited
    })
    await new Promise<void>((resolve, reject) => {
      node.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('serving') && resolve())
      node.once('exit', (code) => reject(new Error(`the demo node exited (${code}) before it served`)))
    })
    const base = `http://127.0.0.1:${port}`
    t.equal((await fetch(`${base}/users/7`)).status, 200, 'a user from the demo app')
    const res = await fetch(`${base}/metrics`)
    const text = await res.text()
    t.match(res.headers.get('content-type'), /^text\/plain/)
    t.match(text, /^peercache_gets_total\{group="users",source="load"\} 1$/m, 'its get, counted')
    const run = spawnSync(promtool.path, ['check', 'metrics'], { input: text, encoding: 'utf8' })
    t.equal(run.status, 0, `promtool: ${run.stdout}${run.stderr}`.trim())
  })

  /** Grafana's variables (every group and instance) and its label_values() helper, expanded as Grafana would. */
  function expand(expr: string, rateInterval: string): string {
    return expr
      .replace(/^label_values\((.*),\s*\w+\)$/, '$1')
      .replaceAll('$__rate_interval', rateInterval)
      .replace(/\$(group|instance)/g, '.*')
  }

  /** The expression of the panel titled `title` whose legend is `legend`. */
  function panelTarget(
    dashboard: { panels: { title: string; targets: { expr: string; legendFormat: string }[] }[] },
    title: string,
    legend: string,
  ) {
    const target = dashboard.panels.find((p) => p.title === title)?.targets.find((x) => x.legendFormat === legend)
    if (target === undefined) throw new Error(`the dashboard has no panel "${title}" with a target "${legend}"`)
    return target.expr
  }

  /** Keys (k0, k1, ...) owned by peer `index`, KEYS of them. */
  function* keysOwnedBy(ownerIndex: (key: string) => number, index: number): Generator<string> {
    let n = 0
    for (const key of numberedKeys(`p${index}-`)) {
      if (ownerIndex(key) !== index) continue
      yield key
      if (++n === KEYS) return
    }
  }

  /** The cluster's totals as Prometheus has them now. */
  async function totals(query: (expr: string) => Promise<{ value: number }[]>) {
    const one = async (expr: string) => (await query(expr))[0]?.value ?? 0
    return {
      gets: await one('sum(peercache_gets_total)'),
      hits: await one('sum(peercache_gets_total{source=~"main|hot|stale"})'),
      loads: await one('sum(peercache_loads_total)'),
      fetches: await one('sum(peercache_peer_fetches_total{outcome="ok"})'),
    }
  }
}
