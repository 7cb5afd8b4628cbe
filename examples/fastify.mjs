// peercache in a Fastify app. The plugin below answers the peer protocol on the app's own server in
// an onRequest hook, before Fastify routes the request or reads its body (the protocol reads raw
// bodies), and decorates the app with the peer (`app.peer`). Every other request goes on to the routes.
//
//   PORT=3001 PEERS=http://127.0.0.1:3001,http://127.0.0.1:3002 node examples/fastify.mjs
//   PORT=3002 PEERS=http://127.0.0.1:3001,http://127.0.0.1:3002 node examples/fastify.mjs
//   curl http://127.0.0.1:3002/users/42   # loaded from the store once, by its owner, whichever process you ask
//   curl http://127.0.0.1:3001/stats      # this process's group stats: loads, hits, peer fetches
//
// PORT (default 3001), HOST (127.0.0.1), PEERS (every process's URL, comma-separated; default this one),
// PEER_TIMEOUT_MS (how long a peer may take to start answering before this process loads a key itself).
// In an app of your own: npm install peercache fastify.
import Fastify from 'fastify'
import { Peer } from 'peercache'
import { usersGroup } from './users.mjs'

/** Fastify plugin: `app.register(peercache, { peer })`. The peer is closed when the app is. */
function peercache(app, { peer }, done) {
  app.decorate('peer', peer)
  app.addHook('onRequest', (request, reply, next) => {
    // peer.handler calls its third argument at once for a path outside its base path (/_peercache/).
    let notOurs = false
    peer.handler(request.raw, reply.raw, () => (notOurs = true))
    if (notOurs) next()
    else reply.hijack() // the peer answers on the raw response: Fastify must not answer too
  })
  // The peer stream starts with an HTTP Upgrade, which Fastify's routes never see: its listener goes on the server.
  peer.attach(app.server)
  app.addHook('onClose', () => peer.close())
  done()
}
// Not encapsulated (what the fastify-plugin package does): the hook sees every request, app.peer is everywhere.
peercache[Symbol.for('skip-override')] = true

const port = Number(process.env.PORT ?? 3001)
const host = process.env.HOST ?? '127.0.0.1'
const self = `http://${host}:${port}`
const app = Fastify()
const peer = new Peer({
  self,
  peers: process.env.PEERS?.split(','),
  peerTimeoutMs: Number(process.env.PEER_TIMEOUT_MS) || undefined, // unset: peercache's default
})
await app.register(peercache, { peer })
const users = usersGroup(app.peer)

app.get('/users/:id', (request) => users.get(request.params.id))
app.get('/stats', () => users.stats())

await app.listen({ port, host })
console.log(`listening on ${self}`)
process.once('SIGTERM', () => app.close())
