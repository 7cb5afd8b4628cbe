// The server `peer.listen()` runs: HTTP or HTTPS (optionally requiring the peers' certificates),
// timeouts that cut off slow and stalled clients, refusals that say why, and one warning when the
// port is opened beyond this host with nothing to tell peers from strangers.
import http from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { LISTEN_DEFAULTS } from './defaults.js'
import { InvalidOptionError } from './errors.js'
import { HEADER } from './protocol.js'
import { positive } from './validate.js'

/** The certificate this peer serves with, and whose certificates it accepts from peers. */
export interface ServerTlsOptions {
  /** This peer's private key, PEM. Required. */
  key: string | Buffer
  /** This peer's certificate (chain), PEM. Required. */
  cert: string | Buffer
  /** The CA(s) peers' client certificates must chain to, PEM. Default: Node's public CAs. */
  ca?: string | Buffer | (string | Buffer)[]
  /**
   * Require every peer to present a certificate that chains to `ca` (mutual TLS): a connection
   * without one is refused during the handshake. Default false.
   */
  requestCert?: boolean
}

export interface ServeOptions {
  /** Serve HTTPS with this certificate (and mutual TLS with `requestCert`). Default: plain HTTP. */
  tls?: ServerTlsOptions
  /**
   * How long a client may take to send a request's headers, in ms (Node's `headersTimeout`): a
   * client that trickles them is cut off with 408 (README, "Security").
   * @default {@link LISTEN_DEFAULTS}.headersTimeoutMs (5000)
   */
  headersTimeoutMs?: number
  /**
   * How long a client may take to send a whole request, body included, in ms (Node's
   * `requestTimeout`): a stalled or trickled body is cut off with 408. Keep it above the peers'
   * `fetchTimeoutMs`, the time they give a PUT (README, "Security").
   * @default {@link LISTEN_DEFAULTS}.requestTimeoutMs (10000)
   */
  requestTimeoutMs?: number
  /**
   * How long an idle keep-alive connection stays open, in ms (Node's `keepAliveTimeout`). Longer
   * than the peers' `keepAliveTimeoutMs`, so a peer never reuses a socket the server is closing.
   * @default {@link LISTEN_DEFAULTS}.idleTimeoutMs (10000)
   */
  idleTimeoutMs?: number
}

/** The HTTP(S) server of `listen()`, not yet listening. */
export function createPeerServer(handler: http.RequestListener, options: ServeOptions): http.Server {
  const headersTimeout = positive('headersTimeoutMs', options.headersTimeoutMs ?? LISTEN_DEFAULTS.headersTimeoutMs)
  const requestTimeout = positive('requestTimeoutMs', options.requestTimeoutMs ?? LISTEN_DEFAULTS.requestTimeoutMs)
  const keepAliveTimeout = positive('idleTimeoutMs', options.idleTimeoutMs ?? LISTEN_DEFAULTS.idleTimeoutMs)
  const common: http.ServerOptions = {
    // Node requires headersTimeout ≤ requestTimeout; the check runs this often (Node's default: 30 s).
    headersTimeout: Math.min(headersTimeout, requestTimeout),
    requestTimeout,
    keepAliveTimeout,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4))),
  }
  const tls = options.tls
  let server: http.Server
  if (tls === undefined) server = http.createServer(common, handler)
  else {
    if (tls === null || typeof tls !== 'object' || !tls.key || !tls.cert) throw new InvalidOptionError('tls', 'needs { key, cert } (PEM)')
    const requestCert = tls.requestCert === true
    if (requestCert && !tls.ca) throw new InvalidOptionError('tls.ca', 'requestCert needs the CA that signs the peers’ certificates')
    server = https.createServer(
      { ...common, key: tls.key, cert: tls.cert, ca: tls.ca, requestCert, rejectUnauthorized: requestCert },
      handler,
    )
  }
  server.on('clientError', refuse)
  return server
}

/**
 * Node's answer to a request it could not parse or that timed out, with the reason in a body and
 * the protocol's error header (Node's own default answers with a bare status).
 */
function refuse(err: NodeJS.ErrnoException, socket: Socket): void {
  // An answer already under way (or a peer that hung up) cannot be replaced by this one: just cut.
  const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
  if (answering || !socket.writable || err.code === 'ECONNRESET') return void socket.destroy()
  const [status, text, message] = describe(err.code)
  const body = JSON.stringify({ error: 'bad-request', message })
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: application/json\r\n${HEADER.error}: bad-request\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

function describe(code: string | undefined): [number, string, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large', `the request line and headers are larger than ${http.maxHeaderSize} bytes`]
    case 'HPE_HEADERS_TIMEOUT':
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout', 'the request took too long to arrive']
    default:
      return [400, 'Bad Request', `not a valid HTTP/1.1 request (${code ?? 'parse error'})`]
  }
}

let warned = false

/** One warning per process when the port is bound beyond loopback without authentication. */
export function warnIfExposed(host: string, authenticated: boolean): void {
  if (authenticated || warned || isLoopback(host)) return
  warned = true
  process.emitWarning(
    `peercache: listening on ${host} without auth: anyone who can reach this port can read, overwrite and remove cached values and take peers out of the ring. Set auth: { secret } on every peer (README, "Security").`,
    { code: 'PEERCACHE_UNAUTHENTICATED' },
  )
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::ffff:127.0.0.1'
}
