// peercache in a plain node:http app, with the peer protocol on a port of its own: peer.listen()
// starts that server, so the app's port can stay open to the app's clients only and the peer port to
// the other peers only. PEERS lists the peer ports' URLs.
//
//   PORT=3001 PEER_PORT=7001 PEERS=http://127.0.0.1:7001,http://127.0.0.1:7002 node examples/http.mjs
//   PORT=3002 PEER_PORT=7002 PEERS=http://127.0.0.1:7001,http://127.0.0.1:7002 node examples/http.mjs
//   curl http://127.0.0.1:3002/users/42   # loaded from the store once, by its owner, whichever process you ask
//   curl http://127.0.0.1:3001/stats      # this process's group stats: loads, hits, peer fetches
//
// PORT (default 3001), PEER_PORT (7001), HOST (127.0.0.1), PEERS (default this process's peer URL alone),
// PEER_TIMEOUT_MS (how long a peer may take to start answering before this process loads a key itself).
import http from 'node:http'
import { Peer } from 'peercache'
import { answerUsers, usersGroup } from './users.mjs'

const port = Number(process.env.PORT ?? 3001)
const peerPort = Number(process.env.PEER_PORT ?? 7001)
const host = process.env.HOST ?? '127.0.0.1'
const peer = new Peer({
  self: `http://${host}:${peerPort}`,
  peers: process.env.PEERS?.split(','),
  peerTimeoutMs: Number(process.env.PEER_TIMEOUT_MS) || undefined, // unset: peercache's default
})
const users = usersGroup(peer)
await peer.listen({ port: peerPort, host })

const server = http.createServer(answerUsers(users))
server.listen(port, host, () => console.log(`listening on http://${host}:${port}, peers reach this process at ${peer.self}`))
// Close the peer first: it tells the others it is leaving and finishes the requests under way.
process.once('SIGTERM', async () => {
  await peer.close()
  server.close()
})
