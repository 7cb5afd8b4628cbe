// TLS: the test PKI (helpers/tls.ts) does what the TLS tests rely on, checked with plain node:https
// and undici: mutual TLS between two of its peers works; a client certificate from the wrong CA, no
// client certificate, and a client that trusts only the wrong CA all fail the handshake. Then Peers
// on https:// URLs: a mutual-TLS cluster, and the wrong-CA cases as a caller sees them in health().
import t from 'tap'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { type ClientTlsOptions, type GroupOptions, Peer } from '../lib/index.js'
import { Ring } from '../lib/ring.js'
import { eventually } from './helpers/inproc.js'
import { freePort } from './helpers/net.js'
import { Origin } from './helpers/origin.js'
import { findKey } from './helpers/peers.js'
import type { TapTest } from './helpers/tap.js'
import { type TestPki, makePki, opensslAvailable } from './helpers/tls.js'

const pki = opensslAvailable() ? makePki(3) : undefined
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

/** Peers on https:// loopback URLs, each serving with its certificate and requiring the others' (mutual TLS). */
async function tlsPeers(t: TapTest, pki: TestPki, clientTls: (i: number) => ClientTlsOptions, n = 2) {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()))
  const urls = ports.map((p) => `https://127.0.0.1:${p}`)
  const peers = urls.map((self, i) => new Peer({ self, peers: urls, tls: clientTls(i), peerTimeoutMs: 2000 }))
  t.teardown(() => Promise.all(peers.map((p) => p.close())))
  await Promise.all(peers.map((p, i) => p.listen({ port: ports[i], tls: { ...pki.peers[i]!, ca: pki.ca, requestCert: true } })))
  const origin = new Origin()
  const groups = peers.map((p, i) =>
    p.group('g', { maxBytes: 1 << 20, replicas: 1, load: origin.loaderFor(`p${i}`) as GroupOptions['load'] }),
  )
  const ring = new Ring(urls)
  return { peers, urls, groups, origin, ring }
}

if (pki) {
  t.test('a mutual-TLS cluster: peers fetch from each other over HTTPS, each presenting its certificate', async (t) => {
    const c = await tlsPeers(t, pki, (i) => ({ ca: pki.ca, ...pki.peers[i]! }), 3)
    const keys = Array.from({ length: 12 }, (_, i) => `tls${i}`)
    for (const key of keys) for (const g of c.groups) t.equal((await g.get(key)).toString(), `value of ${key}`)
    t.equal(c.origin.count(), keys.length, 'one origin load per key: the others fetched from the owner')
    for (const [i, g] of c.groups.entries()) {
      const remote = keys.filter((k) => c.ring.owners(k, 1)[0] !== c.urls[i]).length
      t.equal(g.stats().peerErrors, 0, `peer ${i}: no failed fetch`)
      t.ok(g.stats().peerLoads + g.stats().hotHits >= Math.min(1, remote), `peer ${i}: fetched from the owners`)
    }
    for (const p of c.peers)
      t.notOk(
        p.health().some((h) => h.state !== 'up'),
        'every peer up',
      )
  })

  t.test('a peer that trusts the wrong CA loads locally, and health() shows the certificate error', async (t) => {
    const c = await tlsPeers(t, pki, (i) => ({ ca: i === 0 ? pki.wrongCa : pki.ca, ...pki.peers[i]! }))
    const key = findKey((k) => c.ring.owners(k, 1)[0] === c.urls[1])
    t.equal((await c.groups[0]!.get(key)).toString(), `value of ${key}`, 'the get still succeeds')
    t.equal(c.origin.calls[0]?.by, 'p0', 'by a local load')
    await eventually(() => c.peers[0]!.health().some((h) => h.peer === c.urls[1] && h.lastError !== undefined), 'the failure is recorded')
    const seen = c.peers[0]!.health().find((h) => h.peer === c.urls[1])!
    t.match(seen.lastError, /certificate|UNABLE_TO_VERIFY|self.signed/i, `health says why: ${seen.lastError}`)
  })

  t.test('a peer presenting a certificate of another CA is refused by mutual TLS', async (t) => {
    const c = await tlsPeers(t, pki, (i) => ({ ca: pki.ca, ...(i === 0 ? pki.wrongPeer : pki.peers[i]!) }))
    const key = findKey((k) => c.ring.owners(k, 1)[0] === c.urls[1])
    t.equal((await c.groups[0]!.get(key)).toString(), `value of ${key}`)
    t.equal(c.origin.calls[0]?.by, 'p0', 'loaded locally: the owner refused the handshake')
    t.ok(c.groups[0]!.stats().peerErrors >= 1)
    await eventually(() => c.peers[0]!.health().some((h) => h.peer === c.urls[1] && h.lastError !== undefined), 'the failure is recorded')
  })
}
