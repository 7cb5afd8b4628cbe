// The package as a user meets it: what `npm pack` ships, and the built dist/ loaded by name through
// the exports map, by a CommonJS caller (require) and an ES module caller (import), each in its own
// Node process in a scratch folder where node_modules/peercache links to this checkout. Runs ../dist:
// build first (`npm test` does).
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import type { TapTest } from './helpers/tap.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const run = promisify(execFile)
/** Longest a child process may take here, in ms (it loads the library and gets one value). */
const CHILD_MS = 30_000

t.test('npm pack ships the LICENSE, the README, the build and the sources', async (t) => {
  // --ignore-scripts: list what would be packed without building (the build is the prepack script's job).
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60_000 })
  const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path))
  for (const f of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/keyv.js',
    'dist/keyv.d.ts',
    'lib/index.ts',
  ])
    t.ok(files.has(f), f)
  t.notOk(
    [...files].some((f) => f.startsWith('test/') || f.startsWith('node_modules/')),
    'no tests, no node_modules',
  )
  t.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 the peercache authors\n/)
})

/** A scratch folder whose node_modules/peercache is this checkout, removed when the test ends. */
function consumer(t: TapTest): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peercache-consumer-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'peercache'), 'dir')
  return dir
}

// One peer listening on a free port (alone on its ring it owns every key, so \`self\` need not name that
// port); the key comes through the group, loaded once and then a cache hit, and the peer's HTTP
// endpoint answers. Prints one JSON line.
const PROGRAM = `
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  let loads = 0
  const greetings = peer.group('greetings', { maxBytes: 1 << 20, codec: 'string', load: async (key) => (loads++, 'hello ' + key) })
  const main = async () => {
    const { port } = await peer.listen({ port: 0 })
    const first = await greetings.get('world')
    const second = await greetings.get('world')
    const health = await (await fetch('http://127.0.0.1:' + port + '/_peercache/health')).json()
    await peer.close()
    console.log(JSON.stringify({ first, second, loads, health: health.ok, errorBase: typeof PeercacheError }))
  }
  main().catch((err) => { console.error(err); process.exit(1) })
`

t.test('a CommonJS caller require()s peercache and gets a value through a group', async (t) => {
  const cwd = consumer(t)
  const code = `const { Peer, PeercacheError } = require('peercache')\n${PROGRAM}`
  const { stdout, stderr } = await run(process.execPath, ['-e', code], { cwd, timeout: CHILD_MS })
  t.same(JSON.parse(stdout), { first: 'hello world', second: 'hello world', loads: 1, health: true, errorBase: 'function' }, stderr)
})

t.test('an ES module caller imports peercache the same way', async (t) => {
  const cwd = consumer(t)
  const code = `import { Peer, PeercacheError } from 'peercache'\n${PROGRAM}`
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd, timeout: CHILD_MS })
  t.same(JSON.parse(stdout), { first: 'hello world', second: 'hello world', loads: 1, health: true, errorBase: 'function' }, stderr)
})

t.test('peercache/keyv resolves through the exports map, for require and for import', async (t) => {
  const cwd = consumer(t)
  // A store over a group of a lone peer: a set, then a get, through the subpath's class.
  const program = `
    const peer = new Peer({ self: 'http://127.0.0.1:1' })
    const store = new KeyvPeercache(peer.group('kv', { maxBytes: 1 << 20, codec: 'json', absentTtlMs: 1000 }))
    store.set('k', 'v').then(async () => { console.log(JSON.stringify([await store.get('k'), await store.get('none')])); await peer.close() })`
  const cjs = `const { Peer } = require('peercache')\nconst { KeyvPeercache } = require('peercache/keyv')\n${program}`
  const esm = `import { Peer } from 'peercache'\nimport { KeyvPeercache } from 'peercache/keyv'\n${program}`
  for (const [how, args] of [
    ['require', ['-e', cjs]],
    ['import', ['--input-type=module', '-e', esm]],
  ] as const) {
    const { stdout, stderr } = await run(process.execPath, [...args], { cwd, timeout: CHILD_MS })
    t.same(JSON.parse(stdout), ['v', null], `${how}: ${stderr}`)
  }
})
