// The app each pod of demo/k8s runs: a tiny HTTP service embedding peercache, whose peers are the
// ready pods behind a headless Service, found through DNS. No coordination service: the orchestrator
// already knows which pods are up, and DNS says so.
//
//   GET /items/:key     the value, from the cache cluster (the key's owner loads it once from the origin)
//   GET /membership     this pod's view: self, the ring's peers, the last discovered list
//   GET /livez          200 while the process runs (the liveness probe; readiness is /_peercache/health)
//   GET /_peercache/*   the peer protocol (health included), served on the same port
//
// Environment: POD_IP (required; the downward API's status.podIP), PEERS_DNS_NAME (required; the
// headless Service's fully-qualified name), PORT (default 7001), DISCOVERY_INTERVAL_MS (default 5000),
// LISTEN_HOST (default all addresses), DNS_SERVER (optional host:port of the DNS server to ask; in a
// cluster leave it unset, the test sets it to its own server).
import { Resolver } from 'node:dns/promises'
import http from 'node:http'
// In an app of your own: import { Peer, DnsDiscovery } from 'peercache'
import { DnsDiscovery } from '../../dist/discovery.js'
import { Peer } from '../../dist/index.js'

const podIp = required('POD_IP')
const port = Number(process.env.PORT ?? 7001)
const ipv6 = podIp.includes(':')
const self = `http://${ipv6 ? `[${podIp}]` : podIp}:${port}`

// The pods sign their requests to each other with the secret of the Secret peercache-demo-auth
// (deployment.yaml); without it any pod in the cluster network could fill or wipe the cache.
const secret = required('PEERCACHE_SECRET')
// awaitPeers: the membership comes from DNS. Until the first answer (and every pod it names has
// answered) the health endpoint says "starting" and gets wait, so pods started together do not each
// think they are alone and load every item themselves.
const peer = new Peer({ self, auth: { secret }, awaitPeers: true })
const items = peer.group('items', {
  maxBytes: 64 * 1024 * 1024,
  codec: 'string',
  // Stands in for a database: slow enough that loading once per cluster matters. The value names
  // the pod that loaded it, so you can see which pod owns a key.
  load: async (key) => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return `item ${key}, loaded by ${self}`
  },
})

const discovery = new DnsDiscovery({
  name: required('PEERS_DNS_NAME'),
  port,
  intervalMs: Number(process.env.DISCOVERY_INTERVAL_MS ?? 5000),
  resolver: resolver(process.env.DNS_SERVER),
  onPeers: (urls) => {
    peer.setPeers(urls)
    log('peers', { discovered: urls, peers: peer.peers })
  },
  onError: (err) => log('discovery-error', { reason: err.reason, message: err.message }),
})

const server = http.createServer((req, res) => peer.handler(req, res, () => void route(req, res)))
await new Promise((resolve, reject) => {
  server.once('error', reject)
  server.listen(port, process.env.LISTEN_HOST ?? (ipv6 ? '::' : '0.0.0.0'), resolve)
})
// Listening before the first resolution: the other pods' probes find this one while it starts.
await discovery.start()
log('listening', { self, peers: peer.peers })

// Kubernetes sends SIGTERM after the preStop hook; by then the pod has left the Service's endpoints,
// so the other pods are dropping it from their rings. Close lets requests under way finish.
process.once('SIGTERM', async () => {
  discovery.stop()
  await peer.close()
  server.closeIdleConnections()
  server.close(() => {
    log('closed', {})
    process.exit(0)
  })
})

async function route(req, res) {
  const url = new URL(req.url ?? '/', 'http://app')
  try {
    if (req.method === 'GET' && url.pathname === '/livez') return reply(res, 200, { alive: true })
    if (req.method === 'GET' && url.pathname === '/membership') {
      return reply(res, 200, { self, peers: peer.peers, discovered: discovery.peers ?? null })
    }
    const match = /^\/items\/([^/]+)$/.exec(url.pathname)
    if (req.method === 'GET' && match) {
      const key = decodeURIComponent(match[1])
      return reply(res, 200, { key, value: await items.get(key) })
    }
    reply(res, 404, { error: 'not found' })
  } catch (err) {
    reply(res, 500, { error: err?.code ?? 'error', message: err?.message ?? String(err) })
  }
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function resolver(server) {
  const r = new Resolver({ timeout: 1000, tries: 2 })
  if (server) r.setServers([server])
  return r
}

function required(name) {
  const value = process.env[name]
  if (!value) {
    console.error(`demo/k8s/app.mjs: set ${name}`)
    process.exit(2)
  }
  return value
}

// One JSON line per event, for `kubectl logs` (and for test/discovery.test.ts, which reads them).
function log(event, fields) {
  console.log(JSON.stringify({ event, ...fields }))
}
