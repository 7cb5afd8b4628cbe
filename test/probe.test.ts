// Mirrors lib/probe.ts: createHttpProbe against a real node:http server: the request it sends, how each answer is read, signing, abort, its one connection and close.
import http, { type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { Auth, EMPTY_DIGEST, type SignedRequest } from '../lib/auth.js'
import { InvalidOptionError } from '../lib/errors.js'
import { createHttpProbe, type HttpProbe, type HttpProbeOptions } from '../lib/probe.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import type { TapTest } from './helpers/tap.js'

interface Answer {
  status: number
  body?: string
  headers?: Record<string, string>
}

/** A health endpoint on loopback answering `answer()`; it records each request and counts connections. */
async function healthServer(t: TapTest, answer: () => Answer) {
  const seen: IncomingMessage[] = []
  let connections = 0
  const server = http.createServer((req, res) => {
    seen.push(req)
    const { status, body = '', headers = {} } = answer()
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body)
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, seen, connections: () => connections, server }
}

function probeFor(t: TapTest, options: HttpProbeOptions = {}): HttpProbe {
  const probe = createHttpProbe({ timeoutMs: 5000, ...options })
  t.teardown(() => probe.close())
  return probe
}

const signal = () => new AbortController().signal

t.test('sends GET {basePath}health with the protocol version, and x-peercache-from when self is given', async (t) => {
  const s = await healthServer(t, () => ({ status: 200 }))
  await probeFor(t).probe(s.url, signal())
  await probeFor(t, { basePath: '/cache/', self: 'http://127.0.0.1:9' }).probe(s.url, signal())
  t.same(
    s.seen.map((r) => [r.method, r.url]),
    [
      ['GET', '/_peercache/health'],
      ['GET', '/cache/health'],
    ],
  )
  t.equal(s.seen[0]?.headers[HEADER.protocol], String(PROTOCOL_VERSION))
  t.equal(s.seen[0]?.headers[HEADER.from], undefined, 'no self: no from header')
  t.equal(s.seen[1]?.headers[HEADER.from], 'http://127.0.0.1:9')
})

t.test('how each answer is read: 200 and 503 "starting" are up; anything else is down', async (t) => {
  const cases: [Answer, boolean, string][] = [
    [{ status: 200, body: '{}' }, true, '200'],
    [{ status: 503, body: '{"state":"starting"}' }, true, '503 starting (serves the protocol already)'],
    [{ status: 503, body: '{"state":"closing"}' }, false, '503 closing'],
    [{ status: 503, body: 'not json' }, false, '503 with a body that is not JSON'],
    [{ status: 503, body: '"starting"' }, false, '503 with a JSON string, not an object'],
    [{ status: 400, body: '{"error":"protocol"}' }, false, '400 (another protocol version)'],
    [{ status: 404 }, false, '404'],
    [{ status: 500 }, false, '500'],
    [{ status: 204 }, false, '204: only 200 counts'],
  ]
  let current = cases[0]![0]
  const s = await healthServer(t, () => current)
  const probe = probeFor(t)
  for (const [answer, up, what] of cases) {
    current = answer
    t.equal(await probe.probe(s.url, signal()), up, what)
  }
  t.equal(s.connections(), 1, 'every probe of a peer on its one kept-alive connection, whatever the answer')
})

t.test('401 throws, with the peer and the refusal reason, so health shows why', async (t) => {
  const s = await healthServer(t, () => ({ status: 401, headers: { 'x-peercache-error': 'bad-signature' } }))
  await t.rejects(probeFor(t).probe(s.url, signal()), { message: `${s.url} refused this peer's signature (HTTP 401 bad-signature)` })
})

t.test('with auth, each probe is signed for its path and from, and each signature is new', async (t) => {
  const secret = 'a shared secret of enough bytes'
  const s = await healthServer(t, () => ({ status: 200 }))
  const probe = probeFor(t, { auth: new Auth({ secret }), self: 'http://127.0.0.1:7' })
  t.equal(await probe.probe(s.url, signal()), true)
  t.equal(await probe.probe(s.url, signal()), true)
  const signed: SignedRequest = { method: 'GET', path: '/_peercache/health', from: 'http://127.0.0.1:7', digest: EMPTY_DIGEST }
  const verifier = new Auth({ secret })
  const checks = s.seen.map((req) => verifier.check(signed, req.headers['x-peercache-auth']))
  t.same(checks, [undefined, undefined], 'both verify with the shared secret, neither is a replay of the other')
  const other = new Auth({ secret: 'another secret, just as long' })
  t.equal(other.check(signed, s.seen[0]?.headers['x-peercache-auth']), 'bad-signature', 'another secret refuses it')
})

t.test('the signal aborts a probe that waits for an answer', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const s = await healthServer(t, () => ({ status: 200 }))
  // Hold the answer until the probe has been aborted.
  s.server.removeAllListeners('request')
  let arrived: () => void = () => {}
  const requested = new Promise<void>((resolve) => {
    arrived = resolve
  })
  s.server.on('request', (_req, res) => {
    arrived()
    void held.then(() => res.writeHead(200).end())
  })
  t.teardown(release)
  const ac = new AbortController()
  const probing = probeFor(t).probe(s.url, ac.signal)
  await requested
  ac.abort()
  await t.rejects(probing, { name: 'AbortError' })
})

t.test('a refused connection rejects (no peer listening), it does not answer false', async (t) => {
  const s = await healthServer(t, () => ({ status: 200 }))
  const { url } = s
  await new Promise<void>((resolve) => s.server.close(() => resolve()))
  s.server.closeAllConnections()
  await t.rejects(probeFor(t).probe(url, signal()), { code: 'ECONNREFUSED' })
})

t.test('close() ends the probe connections; a probe after close is refused', async (t) => {
  const s = await healthServer(t, () => ({ status: 200 }))
  const socketClosed = new Promise<void>((resolve) => s.server.once('connection', (socket) => socket.once('close', () => resolve())))
  const probe = createHttpProbe({ timeoutMs: 5000 })
  t.equal(await probe.probe(s.url, signal()), true)
  await probe.close()
  await socketClosed
  t.pass('the kept-alive connection was closed by close()')
  await t.rejects(probe.probe(s.url, signal()), { name: /^Client(Closed|Destroyed)Error$/ })
  await probe.close()
  t.pass('a second close() resolves too')
})

t.test('timeoutMs must be a positive number', async (t) => {
  for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1000']) {
    const err = t.throws(() => createHttpProbe({ timeoutMs: timeoutMs as number }), InvalidOptionError) as InvalidOptionError
    t.equal(err.option, 'timeoutMs', String(timeoutMs))
  }
})
