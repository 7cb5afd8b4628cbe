// The Peer is what a user embeds: it knows the membership (the ring), owns the groups, and wires
// the HTTP server and client to them. The parts (ring, group, client, server) never import it.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pLimit from 'p-limit'
import { PeerClient } from './client.js'
import type { Codec } from './codec.js'
import { ClosedError, InvalidGroupError, InvalidOptionError, PeerUnavailableError } from './errors.js'
import { Group, type GroupHost, type GroupOptions } from './group.js'
import { type HealthReason, type HttpProbe, PeerHealth, type PeerHealthSnapshot, type PeerState, createHttpProbe } from './health.js'
import { DEFAULT_BASE_PATH } from './protocol.js'
import { DEFAULT_VNODES, Ring } from './ring.js'
import { createHandler, type Handler } from './server.js'
import { positive } from './validate.js'

export interface PeerOptions {
  /**
   * The URL at which the other peers reach this process, e.g. `http://10.0.0.5:7001`. Only the
   * origin (scheme, host, port) counts: it is this peer's identity on the ring. Required.
   */
  self: string
  /**
   * Every peer's URL, this one included (added if missing). The order does not matter: every
   * process given the same set builds the same ring. Default: `[self]`.
   */
  peers?: readonly string[]
  /** Path prefix of the peer protocol; must start and end with `/`. Default `/_peercache/`. */
  basePath?: string
  /** Points per peer on the hash ring. Default 500 (README, "Defaults"); lower it to 100-160 above ~200 peers. */
  vnodes?: number
  /**
   * How long a peer may take to start answering a fetch, in ms (undici's headersTimeout). Peers
   * send headers before they wait on any load, so this measures whether the peer is alive, not
   * the origin: past it the peer is suspect and the next replica or a local load answers. Default 1000.
   */
  peerTimeoutMs?: number
  /**
   * How long a value may take once a peer has started answering, in ms (undici's bodyTimeout: the
   * longest silence between frames), and how long a set or remove may take at a peer. It includes
   * the owner's origin load, so keep it above your loader's slowest normal latency. Default 5000.
   */
  fetchTimeoutMs?: number
  /** How long connecting to a peer may take, in ms (undici's connectTimeout). Default 1000. */
  connectTimeoutMs?: number
  /** Keep-alive connections per peer (undici Pool `connections`). Default 8. */
  connections?: number
  /** HTTP/1.1 requests in flight per connection (undici `pipelining`; 1: none). Default 1. */
  pipelining?: number
  /** How long an idle keep-alive connection to a peer stays open, in ms. Default 4000. */
  keepAliveTimeoutMs?: number
  /**
   * Most keys in one batched fetch. Gets bound for the same peer within one event-loop turn travel
   * in one request (README, "Protocol"); 1 turns batching off. Default 128.
   */
  maxBatchKeys?: number
  /** How long a health probe (`GET {basePath}health`) may take, in ms. Default 1000. */
  probeTimeoutMs?: number
  /** Called when another peer's state changes (up, suspect, down): for logs and metrics. */
  onPeerStateChange?: (peer: string, from: PeerState, to: PeerState, reason: HealthReason) => void
  /** Most requests under way at once when one operation fans out (replica copies, remove broadcasts). Default 16. */
  fanOut?: number
}

export interface ListenOptions {
  /** Default 0 (any free port). */
  port?: number
  /** Default `127.0.0.1`. Bind to an address the other peers can reach. */
  host?: string
}

export class Peer {
  /** This peer's identity: the origin of `options.self`. */
  readonly self: string
  /**
   * The peer protocol as a node:http request listener, to mount in a server of your own:
   * `http.createServer(peer.handler)`, or `app.use(peer.handler)` (requests outside the base path go to `next`).
   */
  readonly handler: Handler
  readonly #vnodes: number
  readonly #fetchTimeoutMs: number
  readonly #client: PeerClient
  readonly #groups = new Map<string, Group<unknown>>()
  readonly #host: GroupHost
  readonly #health: PeerHealth
  readonly #probe: HttpProbe
  #ring: Ring
  #server: http.Server | undefined
  #closing: Promise<void> | undefined
  #closed = false

  constructor(options: PeerOptions) {
    if (options === null || typeof options !== 'object')
      throw new InvalidOptionError('options', 'new Peer({ self, peers }) needs an options object')
    this.self = peerUrl('self', options.self)
    this.#vnodes = options.vnodes ?? DEFAULT_VNODES
    if (!Number.isInteger(this.#vnodes) || this.#vnodes < 1 || this.#vnodes > 10_000)
      throw new InvalidOptionError('vnodes', `must be an integer from 1 to 10000, got ${String(options.vnodes)}`)
    const basePath = options.basePath ?? DEFAULT_BASE_PATH
    if (!/^\/([A-Za-z0-9._~-]+\/)*$/.test(basePath))
      throw new InvalidOptionError('basePath', `must start and end with "/", got ${JSON.stringify(basePath)}`)
    this.#ring = this.#buildRing(options.peers ?? [])
    this.#fetchTimeoutMs = positive('fetchTimeoutMs', options.fetchTimeoutMs ?? 5000)
    this.#client = new PeerClient({
      self: this.self,
      basePath,
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 1000),
      peerTimeoutMs: positive('peerTimeoutMs', options.peerTimeoutMs ?? 1000),
      fetchTimeoutMs: this.#fetchTimeoutMs,
      connections: positive('connections', options.connections ?? 8),
      pipelining: positive('pipelining', options.pipelining ?? 1),
      keepAliveTimeoutMs: positive('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? 4000),
      maxBatchKeys: positive('maxBatchKeys', options.maxBatchKeys ?? 128),
      onStall: (p) => this.#health.check(p),
    })
    const probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? 1000)
    this.#probe = createHttpProbe({ basePath, self: this.self, timeoutMs: probeTimeoutMs })
    const onChange = options.onPeerStateChange
    this.#health = new PeerHealth({
      probe: this.#probe.probe,
      probeTimeoutMs,
      onChange: (p, from, to, reason) => {
        // Gets waiting on a peer that is now down move on to its replica instead of waiting out fetchTimeoutMs.
        if (to === 'down') this.#client.abortPeer(p, `marked down (${reason})`)
        onChange?.(p, from, to, reason)
      },
    })
    const peer = this
    // A peer that is not up is skipped: its keys go to the next peer on the ring, their replica.
    const skip = (p: string) => p !== peer.self && !peer.#health.isAvailable(p)
    this.#host = {
      self: this.self,
      owners: (key, count) => peer.#ring.owners(key, count, skip),
      members: () => peer.#ring.peers,
      transport: this.#client,
      limit: pLimit(positive('fanOut', options.fanOut ?? 16)),
      peerFailed: (p, err) => {
        if (!(err instanceof PeerUnavailableError)) return
        // Only silence says a peer may be down; an answer, even an error, says it is alive.
        if (err.reason === 'closing') peer.#health.markDown(p)
        else if (err.reason !== undefined) peer.#health.success(p)
        else peer.#health.failure(p, err)
      },
      peerAnswered: (p) => peer.#health.success(p),
      get closed() {
        return peer.#closed
      },
    }
    this.handler = createHandler({
      basePath,
      group: (name) => this.#groups.get(name),
      closing: () => this.#closed,
      // A peer announcing a graceful leave is routed around at once (and probed until it is back).
      left: (p) => {
        if (p !== this.self && this.#ring.peers.includes(p)) this.#health.markDown(p)
      },
    })
  }

  /** The current members, sorted. */
  get peers(): readonly string[] {
    return this.#ring.peers
  }

  /** Creates a group. Throws InvalidGroupError for a bad or taken name, InvalidOptionError for bad options. */
  group(name: string, options: GroupOptions<Buffer> & { codec?: 'bytes' }): Group<Buffer>
  group(name: string, options: GroupOptions<string> & { codec: 'string' }): Group<string>
  group<T = unknown>(name: string, options: GroupOptions<T> & { codec: 'json' | Codec<T> }): Group<T>
  group<T>(name: string, options: GroupOptions<T>): Group<T> {
    if (this.#closing) throw new ClosedError()
    if (typeof name === 'string' && this.#groups.has(name)) throw new InvalidGroupError(name, 'a group of that name exists already')
    const group = new Group<T>(name, options, this.#host)
    // Private fields make Group invariant in T; the map holds groups of every value type.
    this.#groups.set(name, group as unknown as Group<unknown>)
    return group
  }

  /** The group of that name, if any. */
  getGroup<T = unknown>(name: string): Group<T> | undefined {
    return this.#groups.get(name) as Group<T> | undefined
  }

  /** Replaces the membership. Keys move only to or from the peers that joined or left (about 1/N each). */
  setPeers(peers: readonly string[]): void {
    if (this.#closing) throw new ClosedError()
    const before = this.#ring.peers
    this.#ring = this.#buildRing(peers)
    this.#client.retain(this.#ring.peers)
    for (const p of before) if (!this.#ring.peers.includes(p)) this.#health.forget(p)
  }

  /** What this process knows of each other peer's health: up, suspect or down, and why. */
  health(): PeerHealthSnapshot[] {
    return this.#health.snapshot()
  }

  /** Serves the peer protocol on its own HTTP server. Resolves with the bound address. */
  async listen(options: ListenOptions = {}): Promise<{ port: number; host: string }> {
    if (this.#closing) throw new ClosedError()
    if (this.#server) throw new InvalidOptionError('listen', 'this peer is listening already')
    const server = http.createServer(this.handler)
    // Longer than the clients' keep-alive (4 s), so a client never reuses a socket the server is closing.
    server.keepAliveTimeout = 10_000
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    const addr = server.address() as AddressInfo
    return { port: addr.port, host: addr.address }
  }

  /**
   * Leaves gracefully: tells the other peers (so they route around this one at once), stops
   * taking requests, lets those under way finish, and closes connections to peers.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    // Announce first and keep answering meanwhile: a peer that has not heard yet is still served.
    const others = this.#ring.peers.filter((p) => p !== this.self)
    await Promise.allSettled(others.map((p) => this.#host.limit(() => this.#client.leave(p))))
    this.#closed = true
    await this.#health.close()
    await this.#probe.close()
    const server = this.#server
    this.#server = undefined
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      // Requests under way get fetchTimeoutMs to finish; then their connections are cut.
      const cut = setTimeout(() => server.closeAllConnections(), this.#fetchTimeoutMs)
      await closed
      clearTimeout(cut)
    }
    // Requests from peers are finished (or cut); what still loads has nobody left to serve but
    // this process's own callers, who asked a closed peer: stop it.
    for (const group of this.#groups.values()) group.abortFlights(new ClosedError())
    await this.#client.close()
  }

  #buildRing(peers: readonly string[]): Ring {
    if (!Array.isArray(peers)) throw new InvalidOptionError('peers', 'must be an array of URLs')
    const urls = peers.map((p, i) => peerUrl(`peers[${i}]`, p))
    return new Ring([this.self, ...urls], this.#vnodes)
  }
}

/** A peer's identity: the origin of its URL. */
function peerUrl(option: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidOptionError(option, `must be a URL string, got ${typeof value}`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidOptionError(option, `not a URL: ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidOptionError(option, `must be http: or https:, got ${url.protocol}`)
  if (url.pathname !== '/' || url.search || url.hash)
    throw new InvalidOptionError(option, `give only scheme, host and port (use basePath for a path): ${value}`)
  return url.origin
}
