// Every app in examples/ run as a user would run it: two or three processes on loopback (each example
// as its own OS process, importing 'peercache' by name, which resolves to this checkout's dist/: build
// first), real HTTP requests to each, and the group's stats read back. The point of each example is
// that however many processes are asked for a key, the store is read once for it in the whole cluster.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Agent, request } from 'undici'
import { DNS_NAME, startDnsServer } from './helpers/dns.js'
import { freePort } from './helpers/net.js'
import { type ScriptProcess, startScript } from './helpers/script.js'
import type { TapTest } from './helpers/tap.js'

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url))
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
interface Started {
  apps: ScriptProcess<string>[]
  getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }>
}

/** Starts `examples/<name>.mjs` once per environment and waits until each says it is listening. */
async function start(t: TapTest, name: string, envs: NodeJS.ProcessEnv[]): Promise<Started> {
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
async function oneLoadServesAll(t: TapTest, { getJson }: Started, urls: readonly string[]) {
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
async function stop(t: TapTest, { apps }: Started) {
  for (const app of apps) app.child.kill('SIGTERM')
  const bound = new Promise<string>((resolve) => setTimeout(() => resolve(`still running ${EXIT_MS} ms after SIGTERM`), EXIT_MS).unref())
  const codes = await Promise.all(apps.map((app) => Promise.race([app.exited, bound])))
  t.same(
    codes,
    apps.map(() => 0),
    'each process exits 0 on SIGTERM',
  )
}

const HEALTHY = { status: 200, body: { ok: true, protocol: 2 } }

/** Two processes whose app and peer protocol share one port: PEERS lists the same URLs the app answers on. */
for (const name of ['express', 'fastify']) {
  t.test(`examples/${name}.mjs: the peer handler on the app's own server`, async (t) => {
    const ports = await Promise.all([freePort(), freePort()])
    const urls = ports.map((port) => `http://127.0.0.1:${port}`)
    const example = await start(
      t,
      name,
      ports.map((port) => ({ PORT: String(port), PEERS: urls.join(',') })),
    )
    await oneLoadServesAll(t, example, urls)
    t.same(await example.getJson(`${urls[0]}/_peercache/health`), HEALTHY, 'the peer protocol answers on the app port')
    t.equal((await example.getJson(`${urls[0]}/no-such-page`)).status, 404, "other paths go on to the app's own 404")
    await stop(t, example)
  })
}

t.test('examples/http.mjs: a plain node:http app, the peers on ports of their own (peer.listen)', async (t) => {
  const [app1, app2, peer1, peer2] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  const peerUrls = [peer1, peer2].map((port) => `http://127.0.0.1:${port}`)
  const example = await start(t, 'http', [
    { PORT: String(app1), PEER_PORT: String(peer1), PEERS: peerUrls.join(',') },
    { PORT: String(app2), PEER_PORT: String(peer2), PEERS: peerUrls.join(',') },
  ])
  const appUrls = [app1, app2].map((port) => `http://127.0.0.1:${port}`)
  await oneLoadServesAll(t, example, appUrls)
  t.same(await example.getJson(`${peerUrls[0]}/_peercache/health`), HEALTHY, 'peer.listen serves the protocol')
  t.equal((await example.getJson(`${appUrls[0]}/_peercache/health`)).status, 404, 'the app port does not')
  await stop(t, example)
})

// Three loopback addresses (Linux routes all of 127/8 to lo) on one port, like pods behind a headless
// Service; the test's DNS server on 127.0.0.1 is the only source of membership.
t.test('examples/dns-discovery.mjs: the peers come from DNS alone', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
  const dns = await startDnsServer([...hosts])
  t.teardown(dns.close)
  const port = await freePort(hosts[0])
  const urls = hosts.map((host) => `http://${host}:${port}`)
  const env = { PORT: String(port), PEERS_DNS_NAME: DNS_NAME, DNS_SERVER: dns.server, DISCOVERY_INTERVAL_MS: '50' }
  const example = await start(
    t,
    'dns-discovery',
    hosts.map((host) => ({ ...env, HOST: host })),
  )
  const everyone = `peers: ${urls.join(' ')}`
  await Promise.all(example.apps.map((app) => app.next((line) => line === everyone)))
  t.pass('every process found all three through DNS')
  await oneLoadServesAll(t, example, urls)
  await stop(t, example)
})
