// Readiness at start (issue 10): a peer whose membership comes later (awaitPeers: DNS discovery) is
// not ready until the first setPeers(); until then its health endpoint says 503 `starting`, and the
// gets, sets and removes that need the ring wait for it (up to readyTimeoutMs) instead of taking this
// process for the only member. The last tests start 3 real processes at once through a DNS server.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ClosedError, Peer } from '../lib/index.js'
import { createHttpProbe } from '../lib/probe.js'
import { Ring } from '../lib/ring.js'
import { DNS_NAME, startDnsServer } from './helpers/dns.js'
import { freePort } from './helpers/net.js'
import { startScript } from './helpers/script.js'
import type { TapTest } from './helpers/tap.js'

/** A Peer served by a node:http server of the test's own (so its health can be read after close too). */
async function served(t: TapTest, options: Partial<ConstructorParameters<typeof Peer>[0]> & { port: number }) {
  const { port, ...rest } = options
  const peer = new Peer({ self: `http://127.0.0.1:${port}`, ...rest })
  const server = http.createServer(peer.handler)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    await peer.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const loads: string[] = []
  const group = peer.group('g', {
    maxBytes: 1 << 20,
    codec: 'string',
    load: (k) => {
      loads.push(k)
      return `${k}@${peer.self}`
    },
  })
  return { peer, group, loads, url: peer.self, port: (server.address() as AddressInfo).port }
}

/** `b`, ready with both peers, and `a`, waiting for its membership (awaitPeers); `all` and `ring` are what a will be given. */
async function starting(t: TapTest) {
  const b = await served(t, { port: await freePort() })
  const a = await served(t, { port: await freePort(), awaitPeers: true })
  const all = [a.url, b.url]
  b.peer.setPeers(all)
  return { a, b, all, ring: new Ring(all) }
}

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/_peercache/health`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

t.test('a peer given its peers is ready at once, and its health says so', async (t) => {
  const a = await served(t, { port: await freePort() })
  await a.peer.ready()
  t.match(await health(a.url), { status: 200, body: { ok: true, ready: true } })
})

t.test('awaitPeers: not ready until the first setPeers; a get made meanwhile waits for the ring instead of loading alone', async (t) => {
  const { a, b, all, ring } = await starting(t)
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
  const bKeys = keys.filter((k) => ring.owners(k, 1)[0] === b.url)
  t.ok(bKeys.length > 0, 'some keys are owned by the other peer')

  t.match(await health(a.url), { status: 503, body: { ok: false, ready: false, state: 'starting', reason: /membership/ } })
  let ready = false
  const readyNow = a.peer.ready().then(() => (ready = true))
  const gets = Promise.all(keys.map((k) => a.group.get(k)))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(ready, false, 'ready() waits')
  t.same(a.loads, [], 'no get loaded anything while the membership was unknown')

  a.peer.setPeers(all) // what the first discovery answer does
  await readyNow
  const values = await gets
  t.same(
    values,
    keys.map((k) => `${k}@${ring.owners(k, 1)[0]}`),
    'every key came from its owner on the full ring',
  )
  t.same(a.loads.sort(), keys.filter((k) => !bKeys.includes(k)).sort(), 'the waiting peer loaded only its own keys')
  t.same(b.loads.sort(), [...bKeys].sort(), 'and the other peer its own')
  t.match(await health(a.url), { status: 200, body: { ok: true, ready: true } })
})

t.test('a set and a remove made before readiness wait for it too, and reach the real owner', async (t) => {
  const { a, b, all, ring } = await starting(t)
  const [key, removed] = Array.from({ length: 100 }, (_, i) => `s${i}`).filter((k) => ring.owners(k, 1)[0] === b.url) as [string, string]
  const set = a.group.set(key, 'written early')
  await b.group.set(removed, 'old')
  const remove = a.group.remove(removed)
  a.peer.setPeers(all)
  await set
  await remove
  t.equal(await b.group.get(key), 'written early', "the set reached the key's owner")
  t.equal(await b.group.get(removed), `${removed}@${b.url}`, 'the remove dropped the value there (a get loads it again)')
})

t.test('getEntry and update made before readiness wait for it too, and read from the real owner', async (t) => {
  const { a, b, all, ring } = await starting(t)
  const [key, counted] = Array.from({ length: 100 }, (_, i) => `e${i}`).filter((k) => ring.owners(k, 1)[0] === b.url) as [string, string]
  await b.group.set(key, 'at the owner')
  const entry = a.group.getEntry(key)
  const update = a.group.update(counted, (v) => `${v}+1`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(a.loads, [], 'nothing was loaded alone while the membership was unknown')
  a.peer.setPeers(all)
  t.match(await entry, { value: 'at the owner' }, "the entry came from the key's owner")
  t.equal(await update, `${counted}@${b.url}+1`, 'the update read the value the owner loaded')
  t.same(a.loads, [])
})

t.test('readyTimeoutMs bounds the wait: the get goes on alone, and a warning is logged once', async (t) => {
  const warnings: string[] = []
  const logger = { debug() {}, info() {}, error() {}, warn: (_: unknown, m: string) => warnings.push(m) }
  const a = await served(t, { port: await freePort(), awaitPeers: true, readyTimeoutMs: 30, logger })
  t.equal(await a.group.get('x'), `x@${a.url}`, 'loaded here, the only member known')
  t.equal(await a.group.get('y'), `y@${a.url}`)
  t.equal(warnings.length, 1, 'one warning, not one per get')
  t.match(warnings[0], /readyTimeoutMs/)
  t.match(await health(a.url), { status: 503, body: { state: 'starting' } }, 'still not ready: the health endpoint does not lie')
  t.same(await a.group.get('x'), `x@${a.url}`, 'a cached key never waits')
})

t.test('close before readiness: ready() rejects, waiting gets end, health says closing from then on', async (t) => {
  const a = await served(t, { port: await freePort(), awaitPeers: true, readyTimeoutMs: 60_000 })
  const ready = a.peer.ready()
  const get = a.group.get('k')
  await a.peer.close()
  await t.rejects(ready, ClosedError)
  await t.rejects(get, ClosedError, 'the waiting get ends with the close, not after readyTimeoutMs')
  t.same(a.loads, [])
  t.match(await health(a.url), { status: 503, body: { ok: false, ready: false, state: 'closing' } })
  await t.rejects(a.peer.ready(), ClosedError, 'and ready() after close')
})

t.test('closing a ready peer: health answers 503 closing at once, during the close', async (t) => {
  const b = await served(t, { port: await freePort() })
  const a = await served(t, { port: await freePort(), handOffMs: 0 })
  a.peer.setPeers([a.url, b.url])
  const closing = a.peer.close()
  t.match(await health(a.url), { status: 503, body: { state: 'closing' } })
  await closing
})

t.test("a starting peer is up in the other peers' probes (it serves the protocol); a closing one is not", async (t) => {
  const a = await served(t, { port: await freePort(), awaitPeers: true })
  const probe = createHttpProbe({ timeoutMs: 5000 })
  t.teardown(probe.close)
  t.equal(await probe.probe(a.url, new AbortController().signal), true, 'starting: up')
  await a.peer.close()
  t.equal(await probe.probe(a.url, new AbortController().signal), false, 'closing: not up')
})

t.test('bad awaitPeers and readyTimeoutMs are refused', async (t) => {
  const self = 'http://127.0.0.1:1'
  t.throws(() => new Peer({ self, awaitPeers: 'yes' as unknown as boolean }), { code: 'PEERCACHE_ERR_INVALID_OPTION' })
  t.throws(() => new Peer({ self, awaitPeers: true, readyTimeoutMs: 0 }), { code: 'PEERCACHE_ERR_INVALID_OPTION' })
  t.throws(() => new Peer({ self, awaitPeers: true, readyTimeoutMs: 1.5 }), { code: 'PEERCACHE_ERR_INVALID_OPTION' })
})

// Three processes on 127.0.0.2-4 (Linux routes all of 127/8 to loopback), one port, started at once;
// their membership comes from the DNS server alone, which lists all three from the start (as a
// headless Service with publishNotReadyAddresses does).
const APP = fileURLToPath(new URL('./fixtures/ready-app.mjs', import.meta.url))
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const KEYS = 100

interface AppLine {
  event: string
  ok?: number
  failed?: string[]
  peers?: string[]
}

async function startAt(t: TapTest, when: 'ready' | 'early', hold: boolean) {
  const dns = await startDnsServer(HOSTS)
  t.teardown(dns.close)
  if (hold) dns.state.mode = 'hold'
  const port = await freePort(HOSTS[0])
  const env = (host: string) => ({ HOST: host, PORT: String(port), DNS_SERVER: dns.server, DNS_NAME, KEYS: String(KEYS), WHEN: when })
  const apps = HOSTS.map((host) => startScript(t, APP, { env: env(host), parse: (l) => JSON.parse(l) as AppLine }))
  return { dns, apps, urls: HOSTS.map((h) => `http://${h}:${port}`) }
}

async function totalLoads(urls: string[]): Promise<number[]> {
  return Promise.all(urls.map(async (u) => ((await (await fetch(`${u}/loads`)).json()) as { loads: number }).loads))
}

t.test(
  `3 processes started at once through DNS discovery, each asking for the same ${KEYS} keys after ready(): ${KEYS} origin loads, not ${3 * KEYS}`,
  async (t) => {
    const { apps, urls } = await startAt(t, 'ready', false)
    const got = await Promise.all(apps.map((a) => a.next((l) => l.event === 'got', 60_000)))
    for (const g of got) {
      t.equal(g.ok, KEYS, 'every get answered')
      t.same(g.peers, urls, 'every process knows all three')
    }
    const loads = await totalLoads(urls)
    t.equal(
      loads.reduce((a, b) => a + b, 0),
      KEYS,
      `one load per key in the cluster (per process: ${loads.join(', ')})`,
    )
  },
)

t.test('the same with the gets made before the first DNS answer: they wait for readiness, and still load each key once', async (t) => {
  const { dns, apps, urls } = await startAt(t, 'early', true)
  // Every process has made its gets while its discovery query is held back: none knows its peers.
  await Promise.all(apps.map((a) => a.next((l) => l.event === 'asking', 60_000)))
  dns.state.mode = 'answer'
  for (const send of dns.state.held.splice(0)) send()
  const got = await Promise.all(apps.map((a) => a.next((l) => l.event === 'got', 60_000)))
  for (const g of got) t.equal(g.ok, KEYS, `every get answered ${JSON.stringify(g.failed)}`)
  const loads = await totalLoads(urls)
  t.equal(
    loads.reduce((a, b) => a + b, 0),
    KEYS,
    `one load per key in the cluster (per process: ${loads.join(', ')})`,
  )
})
