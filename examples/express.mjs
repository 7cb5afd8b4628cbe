// peercache in an Express app. app.use(peer.handler) mounts the peer protocol on the app's own
// server: it answers under /_peercache/ and passes every other request on to the app's routes, so one
// port serves the app's clients and the other peers.
//
//   PORT=3001 PEERS=http://127.0.0.1:3001,http://127.0.0.1:3002 node examples/express.mjs
//   PORT=3002 PEERS=http://127.0.0.1:3001,http://127.0.0.1:3002 node examples/express.mjs
//   curl http://127.0.0.1:3002/users/42   # loaded from the store once, by its owner, whichever process you ask
//   curl http://127.0.0.1:3001/stats      # this process's group stats: loads, hits, peer fetches
//
// PORT (default 3001), HOST (127.0.0.1), PEERS (every process's URL, comma-separated; default this one),
// PEER_TIMEOUT_MS (how long a peer may take to start answering before this process loads a key itself).
// In an app of your own: npm install peercache express.
import express from 'express'
import { Peer } from 'peercache'
import { usersGroup } from './users.mjs'

const port = Number(process.env.PORT ?? 3001)
const host = process.env.HOST ?? '127.0.0.1'
const self = `http://${host}:${port}`
const peer = new Peer({
  self,
  peers: process.env.PEERS?.split(','),
  peerTimeoutMs: Number(process.env.PEER_TIMEOUT_MS) || undefined, // unset: peercache's default
})
const users = usersGroup(peer)

const app = express()
app.use(peer.handler)
app.get('/users/:id', async (req, res) => res.json(await users.get(req.params.id)))
app.get('/stats', (_req, res) => res.json(users.stats()))

const server = app.listen(port, host, () => console.log(`listening on ${self}`))
// The peer stream (one upgraded connection per peer for gets) starts with an HTTP Upgrade, which Express
// never sees: attach its listener to the server. Without it, peers fetch from this one by batch.
peer.attach(server)
// Close the peer first: it tells the others it is leaving and finishes the requests under way.
process.once('SIGTERM', async () => {
  await peer.close()
  server.close()
})
