// Peers found through DNS: one name resolves to every process's address (a Kubernetes headless
// Service, a Consul service), every process serves the peer protocol on the same port, and
// DnsDiscovery resolves the name every few seconds and hands the list to peer.setPeers. Here the peer
// protocol is mounted on the app's server (peer.handler, other paths go on to the app).
//
//   PEERS_DNS_NAME=users.default.svc.cluster.local HOST=10.1.2.3 node examples/dns-discovery.mjs
//   curl http://10.1.2.3:7001/users/42
//
// PEERS_DNS_NAME (required, fully qualified), HOST (this process's address as DNS gives it; default
// 127.0.0.1), PORT (7001, the same everywhere), DNS_SERVER (host:port to ask; default the system's),
// DISCOVERY_INTERVAL_MS (5000), PEER_TIMEOUT_MS (how long a peer may take to start answering).
import { Resolver } from 'node:dns/promises'
import http from 'node:http'
import { DnsDiscovery, Peer } from 'peercache'
import { answerUsers, usersGroup } from './users.mjs'

const port = Number(process.env.PORT ?? 7001)
const host = process.env.HOST ?? '127.0.0.1'
const peer = new Peer({
  self: `http://${host}:${port}`,
  peerTimeoutMs: Number(process.env.PEER_TIMEOUT_MS) || undefined, // unset: peercache's default
})
const users = usersGroup(peer)

const discovery = new DnsDiscovery({
  name: process.env.PEERS_DNS_NAME,
  port,
  intervalMs: Number(process.env.DISCOVERY_INTERVAL_MS ?? 5000),
  resolver: process.env.DNS_SERVER ? resolverAt(process.env.DNS_SERVER) : undefined,
  onPeers: (urls) => {
    peer.setPeers(urls)
    console.log(`peers: ${urls.join(' ')}`)
  },
  onError: (err) => console.error(err.message), // a failed resolution keeps the last good list
})

const app = answerUsers(users)
const server = http.createServer((req, res) => peer.handler(req, res, () => app(req, res)))
peer.attach(server) // the peer stream's upgrade listener (without it, peers fetch from this one by batch)
server.listen(port, host, async () => {
  console.log(`listening on ${peer.self}`)
  await discovery.start() // after listening: this process can already answer the peers it finds
})
process.once('SIGTERM', async () => {
  discovery.stop()
  await peer.close()
  server.close()
})

function resolverAt(server) {
  const resolver = new Resolver({ timeout: 1000, tries: 2 })
  resolver.setServers([server])
  return resolver
}
