// The server of listen(): slow and stalled clients are cut off (408), oversize or garbled requests
// are refused with a reason (431, 400), HTTPS and mutual TLS work with the options given, and
// binding beyond loopback without auth warns once. Over raw TCP, with short timeouts.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { InvalidOptionError } from '../lib/errors.js'
import { type ServeOptions, createPeerServer, warnIfExposed } from '../lib/listen.js'
import { exchange, requestBytes } from './helpers/fuzz.js'
import type { TapTest } from './helpers/tap.js'
import { makePki, opensslAvailable } from './helpers/tls.js'

const TIMEOUT_MS = 400

/** A listening server that answers 'ok' after reading the body; closed at teardown. */
async function serve(t: TapTest, options: ServeOptions = {}): Promise<number> {
  const server = createPeerServer((req, res) => {
    req.resume()
    req.once('end', () => res.end('ok'))
  }, options)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
  return (server.address() as AddressInfo).port
}

const short = { headersTimeoutMs: TIMEOUT_MS, requestTimeoutMs: TIMEOUT_MS }

t.test('a client that trickles its headers is cut off with 408', async (t) => {
  const port = await serve(t, short)
  const head = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\nx-slow: ')
  const o = await exchange(port, head, { stallAfter: head.length, limitMs: 20 * TIMEOUT_MS })
  t.equal(o.status, 408)
  t.match(o.head, /took too long to arrive/)
})

t.test('a client that stalls mid-body is cut off with 408', async (t) => {
  const port = await serve(t, short)
  const bytes = requestBytes({ method: 'PUT', path: '/', body: Buffer.alloc(1000, 'v') })
  const o = await exchange(port, bytes, { stallAfter: bytes.length - 500, limitMs: 20 * TIMEOUT_MS })
  t.ok(o.status === 408 || o.status === 'closed', `408 or closed (${o.status})`)
})

t.test('a request within the timeouts is served', async (t) => {
  const port = await serve(t, short)
  const o = await exchange(port, requestBytes({ method: 'PUT', path: '/', body: Buffer.alloc(1000, 'v') }), { limitMs: 10_000 })
  t.equal(o.status, 200)
})

t.test('oversize headers get 431 and garbage 400, each with a reason', async (t) => {
  const port = await serve(t)
  const big = await exchange(port, requestBytes({ method: 'GET', path: '/', headers: [['x-pad', 'p'.repeat(20_000)]] }), {
    limitMs: 10_000,
  })
  t.equal(big.status, 431)
  t.match(big.head, /"message":"the request line and headers are larger than \d+ bytes"/)
  t.match(big.head, /x-peercache-error: bad-request/)
  const junk = await exchange(port, Buffer.from('\u0000\u0001 not http\r\n\r\n'), { limitMs: 10_000 })
  t.equal(junk.status, 400)
  t.match(junk.head, /not a valid HTTP\/1.1 request \(HPE_/)
})

t.test('options: TLS needs a key and a certificate, mutual TLS a CA; timeouts are positive', async (t) => {
  const bad: [ServeOptions, string][] = [
    [{ tls: {} as never }, 'tls'],
    [{ tls: { key: 'k', cert: 'c', requestCert: true } }, 'tls.ca'],
    [{ headersTimeoutMs: 0 }, 'headersTimeoutMs'],
    [{ requestTimeoutMs: -1 }, 'requestTimeoutMs'],
  ]
  for (const [options, option] of bad) {
    const err = t.throws(() => createPeerServer(() => {}, options), InvalidOptionError)
    t.equal((err as InvalidOptionError).option, option)
  }
})

t.test('HTTPS, and mutual TLS with requestCert', { skip: opensslAvailable() ? false : 'the openssl CLI is missing' }, async (t) => {
  const pki = makePki(2)
  const [server, client] = pki.peers as [(typeof pki.peers)[0], (typeof pki.peers)[0]]
  const port = await serve(t, { tls: { ...server, ca: pki.ca, requestCert: true } })
  const url = `https://127.0.0.1:${port}/`
  const ask = async (connect: Record<string, unknown>) => {
    const agent = new Agent({ connect })
    try {
      return await (await request(url, { dispatcher: agent })).body.text()
    } catch (err) {
      return `error ${(err as Error).message}`
    } finally {
      await agent.close()
    }
  }
  t.equal(await ask({ ca: pki.ca, ...client }), 'ok', 'a peer with a certificate of the CA')
  t.match(await ask({ ca: pki.ca }), /^error /, 'no client certificate: refused')
  t.match(await ask({ ca: pki.ca, ...pki.wrongPeer }), /^error /, 'a certificate of another CA: refused')
})

t.test('binding beyond loopback without auth warns once; loopback or auth does not', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  warnIfExposed('127.0.0.1', false)
  warnIfExposed('::1', false)
  warnIfExposed('0.0.0.0', true)
  warnIfExposed('0.0.0.0', false)
  warnIfExposed('10.0.0.5', false)
  await new Promise((r) => setImmediate(r))
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0]!.message, /listening on 0\.0\.0\.0 without auth: anyone who can reach this port/)
  t.equal((warnings[0] as NodeJS.ErrnoException).code, 'PEERCACHE_UNAUTHENTICATED')
})
