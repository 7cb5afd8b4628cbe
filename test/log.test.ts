// The logger option: a Peer logs another peer going down and coming back (its HTTP server really
// closed and reopened), membership changes and its own leave, in pino's shape, and never a line per get.
import http from 'node:http'
import t from 'tap'
import { InvalidOptionError, type Logger, Peer } from '../lib/index.js'
import { eventually } from './helpers/inproc.js'
import { freePort } from './helpers/net.js'
import { numberedKeys } from './helpers/peers.js'
import { Ring } from '../lib/ring.js'

interface Line {
  level: keyof Logger
  fields: Record<string, unknown>
  message: string
}

/** A logger that keeps every call, as pino would get it. */
function recorder(): Logger & { lines: Line[] } {
  const lines: Line[] = []
  const at = (level: keyof Logger) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** Serves `handler` on 127.0.0.1:`port`; closing it drops every connection at once, as a crash would. */
async function serve(handler: http.RequestListener, port: number): Promise<{ crash: () => Promise<void> }> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return {
    crash: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
  }
}

t.test('a peer logs another going down and up, and setPeers; gets write nothing', async (t) => {
  const [portA, portB] = [await freePort(), await freePort()]
  const [urlA, urlB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`]
  const logger = recorder()
  const a = new Peer({ self: urlA, peers: [urlA, urlB], logger })
  const b = new Peer({ self: urlB, peers: [urlA, urlB] })
  const load = async (key: string) => `value of ${key}`
  const ga = a.group('g', { maxBytes: 1 << 20, codec: 'string', load })
  b.group('g', { maxBytes: 1 << 20, codec: 'string', load })
  await a.listen({ port: portA, host: '127.0.0.1' })
  // B is served from a server of the test's own, so the test can take it away (no leave announced) and bring it back.
  let served = await serve(b.handler, portB)
  t.teardown(async () => {
    await served.crash().catch(() => {})
    await Promise.all([a.close(), b.close()])
  })

  for (let i = 0; i < 200; i++) await ga.get(`k${i}`)
  t.ok(ga.stats().peerLoads > 0, `some of the 200 gets were fetched from B (${ga.stats().peerLoads})`)
  t.same(logger.lines, [], 'no line for 200 gets')

  await served.crash()
  // Gets of keys B owns fail over to a local load, and each failed fetch tells failure detection.
  const ring = new Ring([urlA, urlB])
  const keysOfB = [...numberedKeys('after-crash-', 500)].filter((k) => ring.owners(k, 1)[0] === urlB)
  const isDown = () => logger.lines.some((l) => l.fields.to === 'down')
  for (let i = 0; i < 50 && !isDown(); i++) await ga.get(keysOfB[i]!)
  await eventually(isDown, 'A logs B down')
  const down = logger.lines.find((l) => l.fields.to === 'down')!
  t.equal(down.level, 'warn', 'down is a warning')
  t.match(down.fields, { self: urlA, peer: urlB, to: 'down', lastError: String }, 'naming both peers and the last error')
  t.equal(down.message, `peer ${urlB} is down`)

  served = await serve(b.handler, portB)
  // A probes a down peer after a cooldown (at most 5 s): then B is up again.
  await eventually(() => logger.lines.some((l) => l.fields.to === 'up'), 'A logs B up again', 20_000)
  const up = logger.lines.find((l) => l.fields.to === 'up')!
  t.match(up, { level: 'info', fields: { self: urlA, peer: urlB, from: 'down', to: 'up' }, message: `peer ${urlB} is up` })
  t.ok(
    logger.lines.every((l) => l.fields.peer === urlB && ['info', 'warn'].includes(l.level)),
    `every line so far is about B's state (${logger.lines.map((l) => `${l.fields.from}->${l.fields.to}`).join(', ')})`,
  )

  // B's return has one more line to come, not caused by any get: A hands B back the entries it holds.
  await eventually(() => logger.lines.some((l) => l.message === `handed back to ${urlB} the entries it holds`), 'A logs the hand-back')
  const before = logger.lines.length
  for (let i = 0; i < 200; i++) await ga.get(`again-${i}`)
  t.equal(logger.lines.length, before, 'no line for 200 more gets with B back')

  a.setPeers([urlA])
  t.match(logger.lines.at(-1), { level: 'info', fields: { peers: [urlA], joined: [], left: [urlB] } }, 'B removed: info, who left')
  a.setPeers([urlA])
  t.match(logger.lines.at(-1), { level: 'debug', message: 'membership unchanged' }, 'the same list again: only debug')
  a.setPeers([urlB, urlA])
  t.match(
    logger.lines.at(-1),
    { level: 'info', fields: { peers: [urlA, urlB].sort(), joined: [urlB], left: [] } },
    'B back: info, who joined',
  )

  await a.close()
  t.match(
    logger.lines.at(-1),
    { level: 'info', message: 'leaving: telling the other peers', fields: { peers: 1 } },
    'close() says it leaves',
  )
})

t.test('the logger option: refused without the four methods; one that throws breaks nothing', async (t) => {
  const self = 'http://127.0.0.1:1'
  t.throws(() => new Peer({ self, logger: { info() {} } as unknown as Logger }), InvalidOptionError)
  try {
    new Peer({ self, logger: { info() {}, warn() {} } as unknown as Logger })
  } catch (err) {
    t.match(err, { code: 'PEERCACHE_ERR_INVALID_OPTION', option: 'logger', message: /missing debug, error/ }, 'names the missing methods')
  }
  const fail = () => {
    throw new Error('the log is full')
  }
  const peer = new Peer({ self, logger: { debug: fail, info: fail, warn: fail, error: fail } })
  t.doesNotThrow(() => peer.setPeers([self, 'http://127.0.0.1:2']), 'setPeers goes on though the logger throws')
  t.same(peer.peers, [self, 'http://127.0.0.1:2'])
  await peer.close()
})

t.test('an onPeerStateChange that throws is logged as an error naming the peer; detection goes on', async (t) => {
  const [port, deadPort] = [await freePort(), await freePort()]
  const [self, dead] = [`http://127.0.0.1:${port}`, `http://127.0.0.1:${deadPort}`]
  const logger = recorder()
  const warnings: string[] = []
  const onWarning = (w: Error) => void warnings.push(w.message)
  process.on('warning', onWarning)
  const peer = new Peer({
    self,
    peers: [self, dead],
    logger,
    onPeerStateChange: () => {
      throw new Error('the callback broke')
    },
  })
  t.teardown(async () => {
    process.off('warning', onWarning)
    await peer.close()
  })
  const group = peer.group('g', { maxBytes: 1 << 20, codec: 'string', load: async (key) => `value of ${key}` })
  await peer.listen({ port, host: '127.0.0.1' })
  // Nothing listens on the dead peer's port: a get of a key it owns is refused there and loads here.
  const ring = new Ring([self, dead])
  const key = [...numberedKeys('dead-', 500)].find((k) => ring.owners(k, 1)[0] === dead)!
  t.equal(await group.get(key), `value of ${key}`, 'the get is answered all the same')
  await eventually(() => logger.lines.some((l) => l.level === 'error'), 'the error is logged')
  const error = logger.lines.find((l) => l.level === 'error')!
  t.match(error, { message: 'onPeerStateChange threw', fields: { self, peer: dead, error: 'the callback broke' } })
  t.ok(
    logger.lines.some((l) => l.fields.peer === dead && l.fields.to === 'suspect'),
    'the state change itself is logged too',
  )
  await eventually(() => warnings.some((w) => w.includes('the callback broke')), 'and it stays a process warning, as before')
})
