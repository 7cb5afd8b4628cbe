// DNS discovery against a resolver the test controls: a small UDP DNS server on 127.0.0.1 answers A
// and AAAA queries for one name from a record list the test changes, and a node:dns Resolver is
// pointed at it. The last part runs demo/k8s/app.mjs as three processes on 127.0.0.2-4 (Linux routes
// all of 127/8 to loopback), whose membership comes from that server alone.
import { Resolver } from 'node:dns/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { DiscoveryError, DnsDiscovery, type DnsDiscoveryOptions, discover } from '../lib/discovery.js'
import { Peer } from '../lib/peer.js'
import { Ring } from '../lib/ring.js'
import { DNS_NAME, type DnsMode, startDnsServer } from './helpers/dns.js'
import { freePort } from './helpers/net.js'
import { startScript } from './helpers/script.js'

const NAME = DNS_NAME

/** A DnsDiscovery on `dns` that records every callback. */
function watch(dns: Awaited<ReturnType<typeof startDnsServer>>, options: Partial<DnsDiscoveryOptions> = {}) {
  const calls: (readonly string[])[] = []
  const errors: DiscoveryError[] = []
  const discovery = new DnsDiscovery({
    name: NAME,
    port: 7001,
    intervalMs: 60_000,
    resolver: dns.resolver(),
    onPeers: (urls) => calls.push(urls),
    onError: (err) => errors.push(err),
    ...options,
  })
  t.teardown(() => discovery.stop())
  return { discovery, calls, errors }
}

t.test('resolves A and AAAA into sorted, de-duplicated URLs, and calls back only on change', async (t) => {
  const dns = await startDnsServer(['10.0.0.2', '10.0.0.1', '10.0.0.2', '2001:db8::1'])
  t.teardown(dns.close)
  const { discovery, calls, errors } = watch(dns)
  await discovery.start()
  const first = ['http://10.0.0.1:7001', 'http://10.0.0.2:7001', 'http://[2001:db8::1]:7001']
  t.same(calls, [first], 'the first resolution calls back at once')
  t.same(dns.state.queries, { A: 1, AAAA: 1 }, 'both families were asked')

  t.same(await discovery.refresh(), first)
  t.equal(calls.length, 1, 'an unchanged list does not call back')
  t.same(dns.state.queries, { A: 2, AAAA: 2 }, 'although the name was resolved again')

  dns.state.records = ['10.0.0.3', '10.0.0.1', '10.0.0.2', '2001:db8::1']
  await discovery.refresh()
  t.same(
    calls.at(-1),
    ['http://10.0.0.1:7001', 'http://10.0.0.2:7001', 'http://10.0.0.3:7001', 'http://[2001:db8::1]:7001'],
    'an added record',
  )
  dns.state.records = ['10.0.0.3', '10.0.0.1']
  await discovery.refresh()
  t.same(calls.at(-1), ['http://10.0.0.1:7001', 'http://10.0.0.3:7001'], 'removed records, and no AAAA left (NODATA) is fine')
  t.equal(calls.length, 3)
  t.same(errors, [])
})

t.test('the interval picks up a change by itself', async (t) => {
  const dns = await startDnsServer(['10.0.0.1'])
  t.teardown(dns.close)
  const { discovery, calls } = watch(dns, { intervalMs: 20, families: [4] })
  await discovery.start()
  dns.state.records = ['10.0.0.1', '10.0.0.9']
  const deadline = Date.now() + 20_000 // only so a broken schedule fails instead of hanging
  while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.same(calls, [['http://10.0.0.1:7001'], ['http://10.0.0.1:7001', 'http://10.0.0.9:7001']])
  t.equal(dns.state.queries.AAAA, 0, 'families: [4] asks A only')
})

t.test('a failed or empty resolution keeps the last list and calls onError', async (t) => {
  const dns = await startDnsServer(['10.0.0.1', '10.0.0.2'])
  t.teardown(dns.close)
  const { discovery, calls, errors } = watch(dns)
  await discovery.start()
  const good = ['http://10.0.0.1:7001', 'http://10.0.0.2:7001']
  const failures: [DnsMode | 'no records', string, string | undefined][] = []
  for (const mode of ['servfail', 'nxdomain', 'drop', 'no records'] as const) {
    if (mode === 'no records') dns.state.records = []
    else dns.state.mode = mode
    t.same(await discovery.refresh(), good, `${mode}: the last good list stays`)
    const err = errors.at(-1)
    failures.push([mode, err?.reason ?? 'none', (err?.cause as NodeJS.ErrnoException | undefined)?.code])
    dns.state.mode = 'answer'
  }
  t.same(failures, [
    ['servfail', 'resolve', 'ESERVFAIL'],
    ['nxdomain', 'empty', undefined],
    ['drop', 'resolve', 'ETIMEOUT'],
    ['no records', 'empty', undefined],
  ])
  t.ok(errors.every((e) => e instanceof DiscoveryError && e.code === 'PEERCACHE_ERR_DISCOVERY' && e.hostname === NAME))
  t.same(calls, [good], 'onPeers never saw an empty or partial list')
  t.same(discovery.peers, good)

  dns.state.records = ['10.0.0.2']
  await discovery.refresh()
  t.same(calls.at(-1), ['http://10.0.0.2:7001'], 'after the blip a real change goes through')
})

t.test('stop() stops the schedule, and a resolution under way no longer calls back', async (t) => {
  const dns = await startDnsServer(['10.0.0.1'])
  t.teardown(dns.close)
  dns.state.mode = 'hold'
  const { discovery, calls, errors } = watch(dns, { intervalMs: 10, families: [4] })
  const started = discovery.start()
  for (let i = 0; i < 2000 && dns.state.held.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
  t.equal(dns.state.held.length, 1, 'the first query is held at the server')
  discovery.stop()
  dns.state.mode = 'answer'
  for (const release of dns.state.held) release()
  await started
  t.same(calls, [], 'the answer that came after stop() was dropped')
  t.equal(discovery.running, false)
  const asked = dns.state.queries.A
  await new Promise((r) => setTimeout(r, 200)) // twenty intervals
  t.equal(dns.state.queries.A, asked, 'no resolution after stop()')
  t.same(errors, [])
})

t.test('an injected lookup: host names and IPv6 as given, bad addresses rejected', async (t) => {
  let answer: string[] = ['::1', '0:0:0:0:0:0:0:1', 'B.example', '127.0.0.1']
  const calls: (readonly string[])[] = []
  const errors: DiscoveryError[] = []
  const discovery = new DnsDiscovery({
    name: 'x',
    port: 443,
    protocol: 'https',
    lookup: async () => answer,
    onPeers: (u) => calls.push(u),
    onError: (e) => errors.push(e),
  })
  await discovery.refresh()
  t.same(calls, [['https://127.0.0.1', 'https://[::1]', 'https://b.example']], 'canonical origins, as Peer writes them')
  for (const bad of ['not a host!', 'h/x', 'u@h', '[::1]', '']) {
    answer = ['10.0.0.1', bad]
    await discovery.refresh()
  }
  t.same(
    errors.map((e) => e.reason),
    Array(5).fill('invalid-address'),
  )
  t.equal(calls.length, 1, 'one bad address fails the whole answer rather than shrinking the list')
  t.throws(() => new DnsDiscovery({ name: 'x', port: 70000, onPeers: () => {} }), { code: 'PEERCACHE_ERR_INVALID_OPTION' })
  t.throws(() => new DnsDiscovery({ name: '', port: 1, onPeers: () => {} }), { code: 'PEERCACHE_ERR_INVALID_OPTION' })
  t.throws(() => new DnsDiscovery({ name: 'x', port: 1, lookup: async () => [], resolver: new Resolver(), onPeers: () => {} }), {
    code: 'PEERCACHE_ERR_INVALID_OPTION',
  })
})

t.test('an onPeers that throws is reported, and the list is offered again', async (t) => {
  const calls: (readonly string[])[] = []
  const errors: DiscoveryError[] = []
  let throws = true
  const onPeers = (urls: readonly string[]) => {
    calls.push(urls)
    if (throws) throw new Error('not now')
  }
  const discovery = new DnsDiscovery({ name: 'x', port: 1, lookup: async () => ['10.0.0.1'], onPeers, onError: (e) => errors.push(e) })
  t.same(await discovery.refresh(), undefined, 'not delivered')
  throws = false
  t.same(await discovery.refresh(), ['http://10.0.0.1:1'])
  t.equal(calls.length, 2, 'the same list, offered again')
  t.same(
    errors.map((e) => [e.reason, (e.cause as Error).message]),
    [['callback', 'not now']],
  )
})

t.test('without onError, a process warning for the first failure of each streak only', async (t) => {
  let down = true
  const lookup = async () => {
    if (down) throw new Error('resolver down')
    return ['10.0.0.1']
  }
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const discovery = new DnsDiscovery({ name: 'x', port: 1, lookup, onPeers: () => {} })
  for (const state of [true, true, true, false, true, true]) {
    down = state
    await discovery.refresh()
  }
  await new Promise((r) => setImmediate(r)) // warnings are emitted on the next tick
  t.same(
    warnings.map((w) => [w.name, (w as DiscoveryError).reason]),
    [
      ['DiscoveryError', 'resolve'],
      ['DiscoveryError', 'resolve'],
    ],
  )
})

t.test('discover(peer) keeps a Peer on the records and stops once the Peer is closed', async (t) => {
  const dns = await startDnsServer(['10.0.0.1', '10.0.0.2'])
  t.teardown(dns.close)
  const peer = new Peer({ self: 'http://10.0.0.1:7001' })
  const discovery = await discover(peer, { name: NAME, port: 7001, intervalMs: 60_000, resolver: dns.resolver(), families: [4] })
  t.teardown(() => discovery.stop())
  t.same(peer.peers, ['http://10.0.0.1:7001', 'http://10.0.0.2:7001'])
  await peer.close()
  dns.state.records = ['10.0.0.1', '10.0.0.3']
  await discovery.refresh()
  t.equal(discovery.running, false, 'the ClosedError from setPeers stopped it')
})

t.test('three app processes find each other through DNS alone and follow a removed record', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
  const dns = await startDnsServer([...hosts])
  t.teardown(dns.close)
  const port = await freePort(hosts[0]!)
  const url = (h: string) => `http://${h}:${port}`
  const apps = hosts.map((host) => startApp(t, host, port, dns.server))
  for (const app of apps) await app.next((e) => e.event === 'listening')
  const all = hosts.map(url)
  t.same(
    apps.map((a) => a.lastPeers),
    [all, all, all],
    'every process has the same ring, from DNS only',
  )

  // Same ring, same owners: whichever process is asked, each key is loaded once, by its ring owner.
  const ring = new Ring(all)
  const keys = Array.from({ length: 24 }, (_, i) => `k${i}`)
  for (const key of keys) {
    const values = await Promise.all(hosts.map((h) => getItem(url(h), key)))
    t.same(new Set(values), new Set([`item ${key}, loaded by ${ring.owners(key, 1)[0]}`]), `${key}: one value, from its owner`)
  }

  dns.state.records = hosts.slice(0, 2)
  const shrunk = hosts.slice(0, 2).map(url)
  for (const app of apps.slice(0, 2)) await app.next((e) => e.event === 'peers' && e.peers.length === 2)
  t.same(
    apps.slice(0, 2).map((a) => a.lastPeers),
    [shrunk, shrunk],
    'the remaining processes dropped the removed one',
  )
  apps[2]!.child.kill('SIGTERM')
  t.equal(await apps[2]!.exited, 0, 'the removed process closed cleanly on SIGTERM')
  const smaller = new Ring(shrunk)
  for (const key of keys.map((k) => `${k}-after`)) {
    t.equal(
      await getItem(url(hosts[0]!), key),
      `item ${key}, loaded by ${smaller.owners(key, 1)[0]}`,
      `${key}: loaded by its owner on the smaller ring`,
    )
  }
})

interface AppEvent {
  event: string
  peers: string[]
  [k: string]: unknown
}

/** demo/k8s/app.mjs as its own process; its JSON log lines are the events the test waits on. */
function startApp(t: Test, host: string, port: number, dnsServer: string) {
  const script = fileURLToPath(new URL('../demo/k8s/app.mjs', import.meta.url))
  const env = {
    POD_IP: host,
    LISTEN_HOST: host,
    PORT: String(port),
    PEERS_DNS_NAME: NAME,
    DNS_SERVER: dnsServer,
    DISCOVERY_INTERVAL_MS: '50',
    // What deployment.yaml takes from the Secret: the same for every pod of the test.
    PEERCACHE_SECRET: 'discovery-test-secret-0123456789',
  }
  const app = startScript(t, script, { env, parse: (line) => JSON.parse(line) as AppEvent })
  return {
    child: app.child,
    exited: app.exited,
    next: app.next,
    get lastPeers() {
      return app.lines.findLast((e) => e.peers)?.peers
    },
  }
}

async function getItem(base: string, key: string): Promise<string> {
  const res = await fetch(`${base}/items/${encodeURIComponent(key)}`)
  const body = (await res.json()) as { value?: string; message?: string }
  if (res.status !== 200) throw new Error(`${base} ${key}: ${res.status} ${body.message}`)
  return body.value!
}
