// Peers served from servers of the test's own (createPeerServer, as listen() makes them), so that a
// test sees how gets travel: the stream upgrades the server takes, and the batch requests it answers.
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { Peer, type PeerOptions } from '../../lib/index.js'
import { createPeerServer, type ServerTlsOptions } from '../../lib/listen.js'
import { PeerClient, type PeerClientOptions } from '../../lib/client.js'
import { freePort, type Teardown } from './net.js'

export interface ServedPeer {
  peer: Peer
  url: string
  server: http.Server
  /** Upgraded sockets, in the order taken (stream upgrades only, as the server's listener saw them). */
  readonly streams: Duplex[]
  /** Paths of the plain requests answered (batch requests, refused upgrades...). */
  readonly requests: string[]
}

export interface ServeOptions {
  /** Attach the upgrade listener (default true): false is a handler mounted without it. */
  attach?: boolean
  tls?: ServerTlsOptions
  /** Answers a path of its own before the peer does (an "older peer" that knows no stream). */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean
  /** Group 'g' loads `v:{key}` once the promise this returns for the key resolves (undefined: at once). */
  hold?: (key: string) => Promise<void> | undefined
  /** Values of group 'g' are this many bytes (default: `v:{key}`). */
  valueBytes?: number
}

/** A peer serving group 'g' on its own server, `others` being the rest of its ring. */
export async function servePeer(t: Teardown, options: Omit<PeerOptions, 'self' | 'peers'>, serve: ServeOptions = {}): Promise<ServedPeer> {
  const port = await freePort()
  const url = `${serve.tls ? 'https' : 'http'}://127.0.0.1:${port}`
  const peer = new Peer({ ...options, self: url, peers: [url] })
  const requests: string[] = []
  const streams: Duplex[] = []
  const server = createPeerServer(
    (req, res) => {
      requests.push(req.url ?? '')
      if (serve.intercept?.(req, res)) return
      peer.handler(req, res)
    },
    serve.tls ? { tls: serve.tls } : {},
  )
  if (serve.attach !== false) {
    server.on('upgrade', (_req, socket: Duplex) => streams.push(socket))
    peer.attach(server)
  }
  peer.group('g', {
    maxBytes: 64 << 20,
    replicas: 1,
    load: (key: string): Buffer | Promise<Buffer> => {
      const value = serve.valueBytes === undefined ? Buffer.from(`v:${key}`) : Buffer.alloc(serve.valueBytes, key.charCodeAt(0))
      const held = serve.hold?.(key)
      return held === undefined ? value : held.then(() => value)
    },
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    await peer.close()
    server.closeAllConnections()
    for (const s of streams) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { peer, url: `${url.split(':')[0]}://127.0.0.1:${(server.address() as AddressInfo).port}`, server, streams, requests }
}

/** A bare PeerClient (the asker's transport), closed at teardown. */
export function client(t: Teardown, options: Partial<PeerClientOptions> = {}): PeerClient {
  const c = new PeerClient({
    self: 'http://127.0.0.1:1',
    basePath: '/_peercache/',
    connectTimeoutMs: 2000,
    peerTimeoutMs: 2000,
    fetchTimeoutMs: 5000,
    connections: 8,
    keepAliveTimeoutMs: 4000,
    pipelining: 1,
    maxBatchKeys: 128,
    peerStreams: true,
    maxVersionAheadMs: 5000,
    ...options,
  })
  t.teardown(() => c.close())
  return c
}

/** The paths of batch requests among `requests`. */
export function batches(requests: readonly string[]): number {
  return requests.filter((r) => r.endsWith('/batch')).length
}
