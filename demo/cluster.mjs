#!/usr/bin/env node
// `npm run demo`: starts N app nodes (demo/node.mjs, real processes) on 127.0.0.1, drives them
// through a load balancer with Zipf-skewed requests, kills one node midway and restarts it, shows
// a live view (in the terminal and on a web page), and ends with a summary. Exit code 0 when no request failed.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Balancer } from './balancer.mjs'
import { planChaos, runChaos } from './chaos.mjs'
import { startLoad } from './load.mjs'
import { startNodes, stopNodes } from './nodes.mjs'
import { ORIGIN_MAX_MS, ORIGIN_MIN_MS } from './origin.mjs'
import { buildResult, summaryLines } from './summary.mjs'
import { Sampler, everySecond } from './sampler.mjs'
import { LiveView } from './view.mjs'
import { seededRandom, zipfSampler } from './zipf.mjs'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIST = path.join(ROOT, 'dist', 'index.js')
/** Past the run's duration, how long starting, draining and stopping may take before the demo gives up, in ms. */
const GRACE_MS = 60_000

/**
 * One request in this many is a write (PUT of a user's record, or DELETE of the user, in turn)
 * instead of a get: at 300 requests/s, 6 writes/s, each heard by every node as a change event.
 */
const WRITE_EVERY = 50

const DEFAULTS = { nodes: 3, duration: 30, rate: 300, concurrency: 64, users: 1000, zipf: 1.1, seed: 1 }

const HELP = `Usage: npm run demo -- [options]    (or: node demo/cluster.mjs [options] after npm run build)

Starts a peercache cluster of app processes on 127.0.0.1 (each: GET /users/:id through peercache,
a simulated slow origin behind it), sends it load through a round-robin load balancer that retries
a request once on another node when its node is down, SIGKILLs one node at 40% of the run and
restarts it at 70%, shows a live view, then a summary. One request in ${WRITE_EVERY} is a write (PUT or
DELETE /users/:id): every node logs the change events it hears, and the summary counts them. Exit code 0 when no request failed.
The live view is in the terminal and on a web page (the ring, each node's health and charts)
at the URL it prints.

Options:
  --nodes N          app processes (default ${DEFAULTS.nodes}, 1-8)
  --duration S       seconds of load (default ${DEFAULTS.duration}, 1-600)
  --rate R           requests per second at most (default ${DEFAULTS.rate})
  --concurrency C    requests under way at most (default ${DEFAULTS.concurrency})
  --users N          key space: user ids 1..N (default ${DEFAULTS.users})
  --zipf S           Zipf exponent of the key popularity, id k drawn with weight 1/k^S (default ${DEFAULTS.zipf})
  --seed N           seed of the key sequence (default ${DEFAULTS.seed})
  --no-chaos         no kill and restart
  --json             print the result as one JSON object, the last line of stdout; the live
                     view and the summary go to stderr
  --no-view          no live view in the terminal (the summary still prints)
  --web-port N       port of the live web view on 127.0.0.1 (default 0: any free port)
  --no-web           no live web view
  --build            compile lib/ to dist/ first (npm run demo passes it)
  --help             show this text

The origin answers each user id after ${ORIGIN_MIN_MS}-${ORIGIN_MAX_MS} ms (fixed per id). Node logs: demo/logs/.
To run one node by hand, see: node demo/node.mjs --help
`

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      users: { type: 'string' },
      zipf: { type: 'string' },
      seed: { type: 'string' },
      'no-chaos': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-view': { type: 'boolean', default: false },
      'web-port': { type: 'string', default: '0' },
      'no-web': { type: 'boolean', default: false },
      build: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  const number = (name, min, max, integer = true) => {
    const n = values[name] === undefined ? DEFAULTS[name] : Number(values[name])
    // Number('') is 0: an empty value is no number.
    if (values[name] === '') throw new Error(`--${name}: expected a number, got nothing`)
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
      throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${values[name]}`)
    return n
  }
  return {
    help: values.help,
    build: values.build,
    nodes: number('nodes', 1, 8),
    durationMs: number('duration', 1, 600, false) * 1000,
    rate: number('rate', 1, 5000),
    concurrency: number('concurrency', 1, 512),
    users: number('users', 1, 1_000_000),
    zipf: number('zipf', 0.01, 5, false),
    seed: number('seed', 0, 2 ** 32 - 1),
    chaos: !values['no-chaos'],
    json: values.json,
    view: !values['no-view'],
    web: !values['no-web'],
    webPort: number('web-port', 0, 65535),
  }
}

async function run(options, human, signal) {
  const say = (line) => human.write(`${line}\n`)
  const workload = {
    users: options.users,
    zipf: options.zipf,
    rate: options.rate,
    concurrency: options.concurrency,
    seed: options.seed,
    originMs: `${ORIGIN_MIN_MS}-${ORIGIN_MAX_MS}`,
  }
  say(`starting ${options.nodes} app nodes on 127.0.0.1 ...`)
  const nodes = await startNodes(options.nodes)
  const balancer = new Balancer(
    nodes.map((n) => ({ id: n.id, url: n.url })),
    { connections: options.concurrency },
  )
  const title = `peercache demo · ${nodes.length} nodes · ${options.users} users, Zipf s=${options.zipf}, origin ${workload.originMs} ms`
  // Imported here, not above: it needs the library's dist/, which --build may have only just made.
  const web = options.web ? new (await import('./web.mjs')).WebView({ title, nodes }) : undefined
  try {
    say(`nodes: ${nodes.map((n) => `${n.id} ${n.url}`).join(', ')}; logs in demo/logs/`)
    if (web) say(`live web view: ${await web.listen(options.webPort)}`)
    const plan = planChaos(nodes, options.durationMs, options.chaos)
    if (options.chaos && !plan) say('chaos: off (it needs at least 2 nodes)')
    else if (plan)
      say(`chaos: ${plan.victim.id} will be SIGKILLed at ${plan.killAtMs / 1000} s and restarted at ${plan.restartAtMs / 1000} s`)

    const nextId = zipfSampler(options.users, options.zipf, seededRandom(options.seed))
    const startedAt = performance.now()
    const elapsed = () => performance.now() - startedAt
    const load = startLoad({
      balancer,
      nextId,
      rate: options.rate,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      nodeIds: nodes.map((n) => n.id),
      windows: Boolean(options.view || web),
      signal,
      writeEvery: WRITE_EVERY,
    })
    const view = options.view ? new LiveView({ out: human, title }) : undefined
    const onEvent = (text) => {
      web?.event(elapsed(), text)
      if (view) view.event(elapsed(), text)
      else say(text)
    }
    const chaos = plan ? runChaos(plan, nodes, startedAt, signal, onEvent) : Promise.resolve(null)

    const sampler = view || web ? new Sampler({ nodes, record: load.record, durationMs: options.durationMs }) : undefined
    let shown = 0
    const frame = async (second) => {
      const sample = await sampler.sample(second)
      shown = second
      view?.draw(sample)
      web?.publish(sample)
    }
    if (sampler) await everySecond(elapsed, load.done, frame)
    const record = await load.done
    const outcome = await chaos
    // A restart still under way when the load ended (a slow machine) has finished now: one last frame
    // shows the cluster as it ends, if a new second has begun since the last one.
    if (sampler && Math.floor(elapsed() / 1000) > shown) await frame(Math.floor(elapsed() / 1000))
    // Stopping reads each node's counters one last time.
    await stopNodes(nodes)
    return buildResult({ nodes, record, chaos: outcome, workload, durationMs: elapsed() })
  } finally {
    await web?.close()
    await stopNodes(nodes)
    await balancer.close()
  }
}

/**
 * Compiles lib/ to dist/. Done here rather than before this script in the npm script, so that
 * `npm run demo -- --help` answers at once. tsc's messages go to stderr: with --json, stdout is the result's.
 */
function build() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const { status } = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json')], { stdio: ['ignore', 2, 2] })
  if (status !== 0) process.stderr.write(`the build (tsc) failed: the demo needs dist/\n`)
  return status === 0
}

async function main() {
  let options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${HELP}`)
    return 2
  }
  if (options.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (options.build && !build()) return 2
  if (!fs.existsSync(DIST)) {
    process.stderr.write(`${DIST} is missing: run \`npm run build\` first (npm run demo does).\n`)
    return 2
  }
  const human = options.json ? process.stderr : process.stdout
  const stop = new AbortController()
  // Ctrl-C ends the load early; the summary still comes. A second Ctrl-C leaves at once
  // (the nodes notice their parent is gone and exit too).
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130)
    human.write('\nstopping early ...\n')
    stop.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const watchdog = setTimeout(() => {
    process.stderr.write(`the demo did not finish within ${(options.durationMs + GRACE_MS) / 1000} s; giving up\n`)
    process.exit(3)
  }, options.durationMs + GRACE_MS)
  watchdog.unref()

  const result = await run(options, human, stop.signal)
  human.write(`\n${summaryLines(result).join('\n')}\n`)
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`)
  return result.ok ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`demo failed: ${err?.stack ?? err}\n`)
    process.exitCode = 2
  },
)
