// examples/dns-discovery.mjs, run as three processes whose only source of peers is DNS (see
// helpers/examples.ts): however many processes are asked for a key, the store is read once for it.
// A file of its own so that each examples file stays well within tap's per-file timeout on a busy machine.
import t from 'tap'
import { DNS_NAME, startDnsServer } from './helpers/dns.js'
import { oneLoadServesAll, start, stop } from './helpers/examples.js'
import { freePort } from './helpers/net.js'

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
