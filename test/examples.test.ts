// examples/express.mjs, fastify.mjs and http.mjs, each run as two processes on 127.0.0.1 (see
// helpers/examples.ts): however many processes are asked for a key, the store is read once for it.
import t from 'tap'
import { HEALTHY, oneLoadServesAll, start, stop } from './helpers/examples.js'
import { freePort } from './helpers/net.js'

/** Two processes whose app and peer protocol share one port: PEERS lists the same URLs the app answers on. */
for (const name of ['express', 'fastify']) {
  t.test(`examples/${name}.mjs: the peer handler on the app's own server`, async (t) => {
    const ports = await Promise.all([freePort(), freePort()])
    const urls = ports.map((port) => `http://127.0.0.1:${port}`)
    const example = await start(
      t,
      name,
      ports.map((port) => ({ PORT: String(port), PEERS: urls.join(',') })),
    )
    await oneLoadServesAll(t, example, urls)
    t.same(await example.getJson(`${urls[0]}/_peercache/health`), HEALTHY, 'the peer protocol answers on the app port')
    t.equal((await example.getJson(`${urls[0]}/no-such-page`)).status, 404, "other paths go on to the app's own 404")
    await stop(t, example)
  })
}

t.test('examples/http.mjs: a plain node:http app, the peers on ports of their own (peer.listen)', async (t) => {
  const [app1, app2, peer1, peer2] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  const peerUrls = [peer1, peer2].map((port) => `http://127.0.0.1:${port}`)
  const example = await start(t, 'http', [
    { PORT: String(app1), PEER_PORT: String(peer1), PEERS: peerUrls.join(',') },
    { PORT: String(app2), PEER_PORT: String(peer2), PEERS: peerUrls.join(',') },
  ])
  const appUrls = [app1, app2].map((port) => `http://127.0.0.1:${port}`)
  await oneLoadServesAll(t, example, appUrls)
  t.same(await example.getJson(`${peerUrls[0]}/_peercache/health`), HEALTHY, 'peer.listen serves the protocol')
  t.equal((await example.getJson(`${appUrls[0]}/_peercache/health`)).status, 404, 'the app port does not')
  await stop(t, example)
})
