// A real Prometheus for tests (Debian's `prometheus` package, installed by ensureDebianCommand):
// a temp dir with a scrape config for the given targets, the server on a free loopback port, and
// its HTTP API. Killed and its dir removed at teardown, whatever the test did.
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Registry } from 'prom-client'
import { freePort, type Teardown } from './net.js'

/** Serves `registry` at http://127.0.0.1:PORT/metrics until teardown; resolves with that host:port. */
export async function serveMetrics(t: Teardown, registry: Registry): Promise<string> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end()
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return `127.0.0.1:${port}`
}

export interface Prometheus {
  readonly url: string
  /** An instant query; rejects unless Prometheus answers `success`. `time` in ms since the epoch (default: now). */
  query(expr: string, time?: number): Promise<Sample[]>
  /** Waits until `check(samples of expr)` holds, querying every 500 ms; rejects after `limitMs` naming `what`. */
  until(expr: string, check: (samples: Sample[]) => boolean, what: string, limitMs?: number): Promise<Sample[]>
}

export interface Sample {
  metric: Record<string, string>
  value: number
}

/** Starts Prometheus (binary at `binary`) scraping `targets` (host:port, path /metrics) every second. */
export async function startPrometheus(t: Teardown, binary: string, targets: string[]): Promise<Prometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peercache-prometheus-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: peercache',
    '    static_configs:',
    `      - targets: [${targets.map((x) => `'${x}'`).join(', ')}]`,
    '',
  ].join('\n')
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), config)
  const port = await freePort()
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'w')
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', log, log] },
  )
  fs.closeSync(log)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      // Prometheus flushes its head block on SIGTERM; a few seconds are plenty for a tiny one.
      const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
      if (!stopped) child.kill('SIGKILL')
      await exited
    }
  })
  const url = `http://127.0.0.1:${port}`
  const failure = () =>
    `Prometheus exited (${child.exitCode ?? child.signalCode}): ${fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8')}`

  const query = async (expr: string, time?: number): Promise<Sample[]> => {
    const params = new URLSearchParams({ query: expr })
    if (time !== undefined) params.set('time', String(time / 1000))
    const res = await fetch(`${url}/api/v1/query?${params}`, { signal: AbortSignal.timeout(5000) })
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } }
    if (body.status !== 'success') throw new Error(`query failed: ${expr}: ${body.error}`)
    const { resultType, result } = body.data!
    if (resultType === 'scalar') return [{ metric: {}, value: Number((result as [number, string])[1]) }]
    if (resultType !== 'vector') throw new Error(`unexpected ${resultType} for ${expr}`)
    return (result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
      metric: r.metric,
      value: Number(r.value[1]),
    }))
  }

  const until = async (expr: string, check: (s: Sample[]) => boolean, what: string, limitMs = 30_000): Promise<Sample[]> => {
    const deadline = Date.now() + limitMs
    let last: unknown
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(failure())
      try {
        const samples = await query(expr)
        if (check(samples)) return samples
        last = samples
      } catch (err) {
        last = err // not ready yet: connection refused, or 503 while it starts
      }
      if (Date.now() > deadline)
        throw new Error(`not within ${limitMs} ms: ${what}; last answer: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
      await sleep(500)
    }
  }
  return { url, query, until }
}
