// Running an app of examples/ as a user would: its processes on loopback (each example as its own OS
// process, importing 'peercache' by name, which resolves to this checkout's dist/: build first), real
// HTTP requests to each, and the group's stats read back. Used by test/examples*.test.ts.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { type ScriptProcess, startScript } from './script.js'
import type { TapTest } from './tap.js'

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url))
/** The user ids asked of every process, all at once. */
const KEYS = Array.from({ length: 8 }, (_, i) => String(i + 1))
/** How long a process may take to exit after SIGTERM before the test gives up on it, in ms. */
const EXIT_MS = 20_000
/**
 * How long a peer may take to start answering, in ms (PEER_TIMEOUT_MS; peercache's default is 1000).
 * Past it a process loads the key itself, by design; on this shared 2-core machine, with the load
 * average above 20, freshly started processes did take longer, and loaded keys twice.
 */
const PATIENT_PEER_TIMEOUT_MS = '5000'

/** An example's processes, and an HTTP client of its own (no connection outlives the test). */
export interface Started {
  apps: ScriptProcess<string>[]
  getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }>
}

/** Starts `examples/<name>.mjs` once per environment and waits until each says it is listening. */
export async function start(t: TapTest, name: string, envs: NodeJS.ProcessEnv[]): Promise<Started> {
  const script = path.join(EXAMPLES, `${name}.mjs`)
  const apps = envs.map((env) => startScript(t, script, { env: { PEER_TIMEOUT_MS: PATIENT_PEER_TIMEOUT_MS, ...env } }))
  await Promise.all(apps.map((app) => app.next((line) => line.startsWith('listening on '))))
  const client = new Agent()
  t.teardown(() => client.close())
  const getJson = async (url: string) => {
    const res = await request(url, { dispatcher: client })
    const text = await res.body.text()
    return {
      status: res.statusCode,
      body: (res.headers['content-type']?.includes('json') ? JSON.parse(text) : { text }) as Record<string, unknown>,
    }
  }
  return { apps, getJson }
}

/** Every key asked of every process at once: the right record everywhere, one load from the store per key. */
export async function oneLoadServesAll(t: TapTest, { getJson }: Started, urls: readonly string[]) {
  const answers = await Promise.all(urls.flatMap((url) => KEYS.map((id) => getJson(`${url}/users/${id}`))))
  t.same(
    answers,
    urls.flatMap(() => KEYS.map((id) => ({ status: 200, body: { id, name: `User ${id}` } }))),
    `${answers.length} requests, each answered with its user's record`,
  )
  const stats = await Promise.all(urls.map(async (url) => (await getJson(`${url}/stats`)).body as { gets: number; loads: number }))
  const total = (field: 'gets' | 'loads') => stats.reduce((sum, s) => sum + s[field], 0)
  t.equal(total('gets'), urls.length * KEYS.length, 'every request went through the group')
  t.equal(total('loads'), KEYS.length, `${KEYS.length} loads from the store in the whole cluster, one per key`, { stats })
}

/** SIGTERM to each process: each closes its peer and server and exits 0 (or the test fails, bounded in time). */
export async function stop(t: TapTest, { apps }: Started) {
  for (const app of apps) app.child.kill('SIGTERM')
  const bound = new Promise<string>((resolve) => setTimeout(() => resolve(`still running ${EXIT_MS} ms after SIGTERM`), EXIT_MS).unref())
  const codes = await Promise.all(apps.map((app) => Promise.race([app.exited, bound])))
  t.same(
    codes,
    apps.map(() => 0),
    'each process exits 0 on SIGTERM',
  )
}

/** What GET {basePath}health answers on a serving peer. */
export const HEALTHY = { status: 200, body: { ok: true, ready: true, protocol: 2 } }
