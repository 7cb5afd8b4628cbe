// TLS: the test PKI (helpers/tls.ts) does what the TLS tests rely on, checked with plain node:https
// and undici: mutual TLS between two of its peers works; a client certificate from the wrong CA, no
// client certificate, and a client that trusts only the wrong CA all fail the handshake.
import t from 'tap'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { type TestPki, makePki, opensslAvailable } from './helpers/tls.js'
import type { TapTest } from './helpers/tap.js'

const pki = opensslAvailable() ? makePki(2) : undefined
if (pki === undefined) t.plan(0, 'skipped: the openssl CLI is missing and apt-get could not install it')

/** An HTTPS server on loopback with the first peer certificate, requiring a client certificate from `pki.ca`; closed at teardown. */
async function mtlsServer(t: TapTest, pki: TestPki): Promise<string> {
  const s = https.createServer({ ...pki.peers[0]!, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate()
    res.end(`hello ${peer.subject?.CN}`)
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve()))))
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}`
}

/** One GET with undici presenting `connect` options; the body, or the error's code and message. */
async function get(t: TapTest, url: string, connect: Record<string, string>): Promise<string> {
  const agent = new Agent({ connect })
  t.teardown(() => agent.close())
  try {
    const res = await request(url, { dispatcher: agent })
    return await res.body.text()
  } catch (err) {
    const e = err as { code?: string; message: string }
    return `error ${e.code ?? ''} ${e.message}`
  }
}

if (pki) {
  const client = pki.peers[1]!
  t.test('two peers of the same CA talk mutual TLS', async (t) => {
    const url = await mtlsServer(t, pki)
    t.equal(await get(t, url, { ca: pki.ca, ...client }), 'hello peer1')
  })

  t.test('the handshake fails without a client certificate, or with one from the wrong CA', async (t) => {
    const url = await mtlsServer(t, pki)
    t.match(await get(t, url, { ca: pki.ca }), /^error /, 'no client certificate')
    t.match(await get(t, url, { ca: pki.ca, ...pki.wrongPeer }), /^error /, 'a certificate of the wrong CA')
  })

  t.test('a client that trusts only the wrong CA refuses the server', async (t) => {
    const url = await mtlsServer(t, pki)
    t.match(await get(t, url, { ca: pki.wrongCa, ...client }), /^error .*(certificate|UNABLE_TO_VERIFY)/i)
  })
}
