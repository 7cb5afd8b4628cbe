#!/usr/bin/env node
// One application process of the demo: a small HTTP app (`GET /users/:id`, and `PUT` / `DELETE` to
// update or drop a user) with a peercache Peer embedded. One port serves the app, the peer protocol
// (/_peercache/...), the app's /stats and Prometheus metrics at /metrics. Every node listens to the
// group's change events: each set or remove made on any node is logged here and counted in /stats.
// Run by hand to assemble a cluster across terminals:
//   node demo/node.mjs --port 7001 --peers http://127.0.0.1:7001,http://127.0.0.1:7002
//   node demo/node.mjs --port 7002 --peers http://127.0.0.1:7001,http://127.0.0.1:7002
import http from 'node:http'
import { parseArgs } from 'node:util'
import { Peer } from '../dist/index.js'
import { ORIGIN_MAX_MS, ORIGIN_MIN_MS, createOrigin } from './origin.mjs'

const HELP = `Usage: node demo/node.mjs [options]

One demo app node: GET /users/:id answers a user record through peercache (group "users"),
loading it from a simulated slow store (${ORIGIN_MIN_MS}-${ORIGIN_MAX_MS} ms per load) on a miss;
PUT /users/:id (body: the record) stores it with group.set, DELETE /users/:id drops it with
group.remove. Every node logs each change event it hears (whichever node made the change) and
counts them in /stats (changeEvents).
The same port serves the peer protocol (/_peercache/...), GET /stats (JSON counters) and
GET /metrics (Prometheus metrics, peer.registerMetrics; needs prom-client installed).

Options:
  --port N        port to listen on (default 7001)
  --host ADDR     address to bind (default 127.0.0.1)
  --self URL      this node's URL as the other peers reach it (default http://HOST:PORT)
  --peers URLS    comma-separated URLs of every node, this one included (default: only --self);
                  give every node the same list
  --id NAME       name shown in logs and /stats (default node-PORT)
  --cache-mb N    peercache byte budget of the "users" group in MiB (default 64)
  --backup-dir D  save the group to D every minute and on close, and restore from it at start
                  (PeerOptions backup; default: no backups)
  --hand-off-ms N how long a closing node may spend handing its keys to their next owners
                  (PeerOptions handOffMs; default peercache's, 2000; 0: no hand-off)
  --help          show this text

Environment:
  PEERCACHE_SECRET  the secret the nodes share to sign their requests to each other (auth);
                    give every node the same one. Unset: no auth (fine on 127.0.0.1 only).
                    npm run demo makes a random one for its nodes.

Example, two nodes in two terminals:
  node demo/node.mjs --port 7001 --peers http://127.0.0.1:7001,http://127.0.0.1:7002
  node demo/node.mjs --port 7002 --peers http://127.0.0.1:7001,http://127.0.0.1:7002
  curl http://127.0.0.1:7002/users/42 ; curl http://127.0.0.1:7002/stats
  curl -X DELETE http://127.0.0.1:7001/users/42   # node-7002 logs the change event too
`

const USER_ID = /^\/users\/([1-9][0-9]{0,8})$/

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '7001' },
      host: { type: 'string', default: '127.0.0.1' },
      self: { type: 'string' },
      peers: { type: 'string' },
      id: { type: 'string' },
      'cache-mb': { type: 'string', default: '64' },
      'backup-dir': { type: 'string' },
      'hand-off-ms': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  const port = Number(values.port)
  const cacheMb = Number(values['cache-mb'])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: expected 1-65535, got ${values.port}`)
  if (!(cacheMb > 0)) throw new Error(`--cache-mb: expected a positive number, got ${values['cache-mb']}`)
  const handOffMs = values['hand-off-ms'] === undefined ? undefined : Number(values['hand-off-ms'])
  if (handOffMs !== undefined && !(Number.isInteger(handOffMs) && handOffMs >= 0))
    throw new Error(`--hand-off-ms: expected an integer >= 0, got ${values['hand-off-ms']}`)
  const self = values.self ?? `http://${values.host}:${port}`
  const peers = values.peers
    ? values.peers
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
    : [self]
  return {
    help: values.help,
    port,
    host: values.host,
    self,
    peers,
    id: values.id ?? `node-${port}`,
    maxBytes: Math.round(cacheMb * 1024 * 1024),
    backupDir: values['backup-dir'],
    handOffMs,
  }
}

/**
 * peercache's logger (pino's interface) as JSON lines on stdout, which the demo sends to this node's
 * log: {"time":...,"level":"warn","node":"n1","msg":"peer http://... is down","peer":...}. Debug lines are left out.
 */
function jsonLogger(node) {
  const write = (level) => (fields, msg) =>
    void process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, node, msg, ...fields })}\n`)
  return { debug() {}, info: write('info'), warn: write('warn'), error: write('error') }
}

/** Starts the app; resolves once it listens. */
async function startNode(options) {
  const origin = createOrigin()
  // Signed requests between the nodes when they share a secret: nobody else can fill or wipe the cache.
  const secret = process.env.PEERCACHE_SECRET
  const auth = secret ? { secret } : undefined
  const peer = new Peer({
    self: options.self,
    peers: options.peers,
    logger: jsonLogger(options.id),
    auth,
    profiling: true,
    handOffMs: options.handOffMs,
    backup: options.backupDir === undefined ? undefined : { dir: options.backupDir },
  })
  const users = peer.group('users', { maxBytes: options.maxBytes, codec: 'string', load: (id, ctx) => origin.load(id, ctx.signal) })
  const counts = { requests: 0, errors: 0, writes: 0, changeEvents: 0 }
  // Change events: every set and remove of a user, made on any node, arrives on every node.
  users.on('change', ({ key, kind, version, origin }) => {
    counts.changeEvents++
    const fields = { time: new Date().toISOString(), level: 'info', node: options.id, msg: 'change event', kind, key, version, origin }
    process.stdout.write(`${JSON.stringify(fields)}\n`)
  })
  // Loaded once the node listens: importing prom-client must not delay the node's start.
  let metrics

  async function getUser(id, res) {
    counts.requests++
    try {
      const body = await users.get(id)
      send(res, 200, body)
    } catch (err) {
      counts.errors++
      send(res, 500, JSON.stringify({ error: err?.code ?? 'error', message: err?.message ?? String(err) }))
    }
  }

  /** PUT stores the request's body as the user's record; DELETE drops it (the next GET loads it again). */
  async function writeUser(method, id, req, res) {
    counts.writes++
    try {
      if (method === 'DELETE') return send(res, 200, JSON.stringify(await users.remove(id)))
      const chunks = []
      for await (const chunk of req) chunks.push(chunk)
      send(res, 200, JSON.stringify(await users.set(id, Buffer.concat(chunks).toString('utf8'))))
    } catch (err) {
      counts.errors++
      send(res, 500, JSON.stringify({ error: err?.code ?? 'error', message: err?.message ?? String(err) }))
    }
  }

  function stats() {
    return {
      id: options.id,
      url: peer.self,
      // What this process thinks of its peers (the live views show it).
      health: peer.health().map((h) => ({ peer: h.peer, state: h.state })),
      pid: process.pid,
      uptimeMs: Math.round(process.uptime() * 1000),
      ...counts,
      originLoads: origin.loads,
      group: users.stats(),
    }
  }

  function send(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-served-by': options.id })
    res.end(body)
  }

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/'
    if (url.startsWith('/_peercache/')) return peer.handler(req, res)
    const match = USER_ID.exec(url)
    if (match && (req.method === 'PUT' || req.method === 'DELETE')) return void writeUser(req.method, match[1], req, res)
    if (req.method !== 'GET') return send(res, 405, JSON.stringify({ error: 'method', message: 'GET, or PUT and DELETE of /users/:id' }))
    if (match) return void getUser(match[1], res)
    if (url === '/stats') return send(res, 200, JSON.stringify(stats()))
    if (url === '/metrics') return void metrics.then((serve) => serve(res))
    send(res, 404, JSON.stringify({ error: 'not-found', message: 'try GET /users/:id or GET /stats' }))
  })
  peer.attach(server) // the peer stream's upgrade listener
  // Longer than the keep-alive of peercache's client and the load balancer (4 s), so neither reuses a closing socket.
  server.keepAliveTimeout = 10_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, resolve)
  })
  metrics = metricsOf(peer)

  async function close() {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeIdleConnections()
    // Requests under way get a second to finish; then their connections go too.
    const force = setTimeout(() => server.closeAllConnections(), 1000)
    await Promise.all([closed, peer.close()])
    clearTimeout(force)
  }
  return { close }
}

/** A /metrics handler: the peer's metrics in a registry of their own, or 501 without prom-client. */
async function metricsOf(peer) {
  const prom = await import('prom-client').catch(() => undefined)
  if (prom === undefined) return (res) => res.writeHead(501, { 'content-type': 'text/plain' }).end('prom-client is not installed\n')
  const registry = new prom.Registry()
  peer.registerMetrics(registry)
  return async (res) => {
    const text = await registry.metrics()
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) }).end(text)
  }
}

async function main() {
  let options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`${err.message}\n\n${HELP}`)
    process.exit(2)
  }
  if (options.help) return void process.stdout.write(HELP)
  const node = await startNode(options)
  console.log(
    `${options.id} (pid ${process.pid}) serving http://${options.host}:${options.port}/users/:id as ${options.self}; peers: ${options.peers.join(', ')}`,
  )

  let stopping = false
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    console.log(`${options.id}: ${why}, closing`)
    const hardExit = setTimeout(() => process.exit(1), 5000)
    await node.close()
    clearTimeout(hardExit)
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  if (process.send) {
    // Started by demo/cluster.mjs: it owns our lifetime (Ctrl-C goes to it, and it stops us),
    // and if it dies the IPC channel closes, so we never outlive it.
    process.on('SIGINT', () => {})
    process.on('disconnect', () => void stop('the cluster process is gone'))
    process.send({ type: 'ready', pid: process.pid })
  } else {
    process.on('SIGINT', () => void stop('SIGINT'))
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
