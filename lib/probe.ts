// The active check of failure detection: `GET {basePath}health` on its own connections, so a probe
// never queues behind requests stuck on a hung peer.
import { Agent, request } from 'undici'
import type { Auth } from './auth.js'
import { HEALTH_DEFAULTS, PEER_DEFAULTS } from './defaults.js'
import type { HealthProbe } from './health.js'
import type { ClientTlsOptions } from './options.js'
import { HEADER, PROTOCOL_VERSION } from './protocol.js'
import { positive } from './validate.js'

export interface HttpProbeOptions {
  /**
   * The peer protocol's path prefix; the probe is `GET {basePath}health`.
   * @default {@link PEER_DEFAULTS}.basePath (`/_peercache/`)
   */
  basePath?: string
  /** This peer's URL, sent as `x-peercache-from` (for the other side's logs). Optional. */
  self?: string
  /**
   * Connect, headers and body timeout of a probe request, in ms: a backstop to the probe's signal,
   * so give PeerHealth's `probeTimeoutMs`.
   * @default {@link HEALTH_DEFAULTS}.probeTimeoutMs (1000)
   */
  timeoutMs?: number
  /** Signs each probe, so that a peer with another secret answers 401 and is seen as down. Optional. */
  auth?: Auth
  /** What to trust and present on https:// peers, as the Peer's `tls`. Optional. */
  tls?: ClientTlsOptions
}

export interface HttpProbe {
  readonly probe: HealthProbe
  /** Closes the probes' connections; call after `PeerHealth.close()`. */
  close(): Promise<void>
}

/**
 * The standard probe: `GET {basePath}health` answered 200, or 503 with state `starting` (a peer that
 * waits for its membership still answers requests); a peer that is closing answers 503 `closing`, one
 * that speaks another protocol version 400. Probes have their own undici Agent, one connection per
 * peer, so a probe never queues behind requests stuck on a hung peer.
 */
export function createHttpProbe(options: HttpProbeOptions = {}): HttpProbe {
  const basePath = options.basePath ?? PEER_DEFAULTS.basePath
  const timeoutMs = positive('timeoutMs', options.timeoutMs ?? HEALTH_DEFAULTS.probeTimeoutMs)
  const headers: Record<string, string> = { [HEADER.protocol]: String(PROTOCOL_VERSION) }
  if (options.self !== undefined) headers[HEADER.from] = options.self
  const agent = new Agent({
    connections: 1,
    connect: { timeout: timeoutMs, ...options.tls },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })
  const path = `${basePath}health`
  const { auth } = options
  return {
    probe: async (peer, signal) => {
      const signed = auth ? { ...headers, ...auth.sign('GET', path, options.self ?? '') } : headers
      const res = await request(`${peer}${path}`, { dispatcher: agent, signal, headers: signed })
      // A peer still starting (no membership yet) serves the peer protocol all the same: it is up.
      if (res.statusCode === 503)
        return ((await res.body.json().catch(() => undefined)) as { state?: unknown } | undefined)?.state === 'starting'
      await res.body.dump()
      // A refusal says why: health's lastError shows it (a wrong secret, a clock out of step).
      if (res.statusCode === 401)
        throw new Error(`${peer} refused this peer's signature (HTTP 401 ${String(res.headers['x-peercache-error'] ?? '')})`)
      return res.statusCode === 200
    },
    close: () => agent.close().catch(() => agent.destroy()),
  }
}
