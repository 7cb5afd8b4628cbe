// The demo, run as a user runs it: real processes on 127.0.0.1, its --json line read back.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
// @ts-expect-error plain JS module of the demo, no types
import { freePorts } from '../demo/nodes.mjs'
// @ts-expect-error plain JS module of the demo, no types
import { userRecord } from '../demo/origin.mjs'
import { runToEnd, startScript } from './helpers/script.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** Longest a demo process may run here before the test gives up on it (it did hang), in ms. */
const HANG_MS = 60_000

interface NodeResult {
  id: string
  starts: number
  requests: number
  mainHits: number
  hotHits: number
  peerFetches: number
  originLoads: number
  writes: number
  changeEvents: number
  p50Ms: number | null
  p99Ms: number | null
}

interface DemoResult {
  requests: number
  answered: number
  failed: number
  failures: string[]
  writes: number
  writeFailures: number
  originLoads: { before: number; during: number; after: number; total: number }
  nodes: NodeResult[]
  chaos: { killed: string | null; restarted: string | null }
}

/** A demo script run to its end from the repository's root. */
function demoScript(t: Test, script: string, args: string[]) {
  return runToEnd(t, path.join(ROOT, 'demo', script), args, { cwd: ROOT, hangMs: HANG_MS })
}

async function runDemo(t: Test, args: string[]): Promise<DemoResult> {
  const { code, stdout, stderr } = await demoScript(t, 'cluster.mjs', [...args, '--json'])
  const last = stdout.trim().split('\n').at(-1) ?? ''
  t.equal(code, 0, 'the demo exits with 0', { stderr: stderr.slice(-4000) })
  return JSON.parse(last) as DemoResult
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

t.test('3 nodes under load, one SIGKILLed and restarted: no request fails, the origin is spared', async (t) => {
  const r = await runDemo(t, ['--nodes', '3', '--duration', '8'])
  t.equal(r.failed, 0, 'no request failed', { failures: r.failures })
  t.equal(r.answered, r.requests, 'every request got the right record')
  // Not a speed check: at 300 requests/s for 8 s, even a loaded machine sends more than this.
  t.ok(r.requests >= 100, `a real load was sent (${r.requests} requests)`)
  t.ok(r.originLoads.total > 0, 'the origin was used')
  // How many requests share a load depends on how many were sent (a loaded machine sends fewer): only "fewer loads than requests" is certain.
  t.ok(r.requests > r.originLoads.total, `fewer origin loads (${r.originLoads.total}) than requests (${r.requests})`)
  const o = r.originLoads
  t.equal(o.before + o.during + o.after, o.total, 'before + during + after = total origin loads')
  t.ok(o.before > 0 && o.after >= 0 && o.during >= 0, 'every phase counted', { originLoads: o, chaos: r.chaos })
  t.equal(r.nodes.length, 3)
  for (const n of r.nodes) t.ok(n.requests > 0, `${n.id} served ${n.requests} requests`)
  t.equal(sum(r.nodes.map((n) => n.requests)), r.answered, 'the nodes served every answered request')
  t.equal(sum(r.nodes.map((n) => n.originLoads)), o.total, 'the nodes made every origin load')
  t.equal(r.chaos.killed, 'n2', 'n2 was killed')
  t.equal(r.chaos.restarted, 'n2', 'n2 was restarted')
  t.equal(r.nodes.find((n) => n.id === 'n2')?.starts, 2, 'n2 ran as two processes')
  t.ok(sum(r.nodes.map((n) => n.peerFetches)) > 0, 'nodes fetched values from their owners')
  // One request in 50 is a write (PUT or DELETE of a user); the nodes that were never killed heard each as a change event.
  t.ok(r.writes > 0, `writes were sent (${r.writes}, ${r.writeFailures} failed)`)
  // Not an exact count: the killed node's last writes (and its counters since they were last read) die with it.
  t.ok(sum(r.nodes.map((n) => n.writes)) > 0, 'the nodes made writes')
  for (const n of r.nodes.filter((n) => n.id !== 'n2')) t.ok(n.changeEvents > 0, `${n.id} heard ${n.changeEvents} change events`)
  // Running the demo leaves the working tree clean: the node logs are ignored by git.
  t.doesNotThrow(() => execFileSync('git', ['check-ignore', '-q', 'demo/logs/n1.log'], { cwd: ROOT }), 'demo/logs/ is git-ignored')
})

t.test('--no-chaos: nobody is killed, every origin load comes "before"', async (t) => {
  const r = await runDemo(t, ['--nodes', '2', '--duration', '3', '--no-chaos', '--no-view'])
  t.equal(r.failed, 0)
  t.same(r.chaos, { ...r.chaos, killed: null, restarted: null })
  t.equal(r.originLoads.before, r.originLoads.total)
  t.equal(r.originLoads.during + r.originLoads.after, 0)
  for (const n of r.nodes) t.equal(n.starts, 1, `${n.id} ran as one process`)
})

t.test('a node started by hand, as the README shows, serves users and shares loads with its peer', async (t) => {
  const ports: number[] = await freePorts(2)
  const peers = ports.map((p) => `http://127.0.0.1:${p}`).join(',')
  const nodes = ports.map((port) =>
    startScript(t, path.join(ROOT, 'demo', 'node.mjs'), { args: ['--port', String(port), '--peers', peers] }),
  )
  // Each prints one line once it listens.
  await Promise.all(nodes.map((node) => node.next(() => true)))
  const [a, b] = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string]
  for (const url of [a, b, a, b]) {
    const res = await fetch(`${url}/users/42`)
    t.equal(res.status, 200)
    t.equal(await res.text(), userRecord(42), `${url} answers the record of user 42`)
  }
  const stats = await Promise.all(
    [a, b].map(async (url) => (await fetch(`${url}/stats`)).json() as Promise<{ requests: number; originLoads: number }>),
  )
  t.same(
    stats.map((s) => s.requests),
    [2, 2],
    'each node served its two requests',
  )
  t.equal(stats[0]!.originLoads + stats[1]!.originLoads, 1, 'one origin load for four requests on two nodes')
  // A write through one node is a change event on both, which each logs (JSON lines on stdout).
  t.equal((await fetch(`${a}/users/42`, { method: 'PUT', body: 'updated' })).status, 200)
  t.equal(await (await fetch(`${b}/users/42`)).text(), 'updated', 'the other node reads the update')
  t.equal((await fetch(`${a}/users/42`, { method: 'DELETE' })).status, 200)
  for (const node of nodes) {
    for (const kind of ['set', 'remove']) {
      const line = await node.next((l) => l.includes('"msg":"change event"') && l.includes(`"kind":"${kind}"`))
      t.match(JSON.parse(line), { kind, key: '42', origin: a }, `a ${kind} event logged by each node, made by ${a}`)
    }
  }
  const after = (await (await fetch(`${b}/stats`)).json()) as { changeEvents: number }
  t.equal(after.changeEvents, 2, 'counted on the stats endpoint')
  const help = await demoScript(t, 'node.mjs', ['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--peers URLS/, 'node.mjs --help documents its options')
})

t.test('--help documents the options and exits 0', async (t) => {
  const { code, stdout } = await demoScript(t, 'cluster.mjs', ['--help'])
  t.equal(code, 0)
  for (const option of ['--nodes', '--duration', '--no-chaos', '--json', '--users', '--zipf']) t.match(stdout, option)
})

t.test('npm run demo -- --help answers without building first', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.demo, 'node demo/cluster.mjs --build', 'the npm script builds through the demo, not before it')
  const built = fs.statSync(path.join(ROOT, 'dist', 'index.js')).mtimeMs
  const { code, stdout } = await demoScript(t, 'cluster.mjs', ['--build', '--help'])
  t.equal(code, 0)
  t.match(stdout, '--nodes N')
  t.equal(fs.statSync(path.join(ROOT, 'dist', 'index.js')).mtimeMs, built, 'dist/ was not rebuilt for the help')
})
