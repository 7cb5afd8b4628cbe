// The Peer is what a user embeds: it owns the groups and wires the parts to them: the membership
// (ring and failure detection), the HTTP client and the server. The parts never import it.
// Over 300 lines: it is the whole public surface of a Peer (groups, membership, readiness, listen, close,
// backups, hand-off, locks, pub/sub, metrics), each method a few lines handing over to its room.
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import pLimit from 'p-limit'
import { Auth } from './auth.js'
import { PeerClient } from './client.js'
import type { Codec } from './codec.js'
import { AUTH_DEFAULTS, HINTS_DEFAULTS, LISTEN_DEFAULTS, PEER_DEFAULTS } from './defaults.js'
import { type BackupRestore, Backups } from './backup.js'
import type { HandOffBudget } from './handoff.js'
import { ClosedError, InvalidGroupError, InvalidOptionError } from './errors.js'
import { Group, type GroupOptions } from './group.js'
import { type HealthReason, PeerHealth, type PeerHealthSnapshot, type PeerState } from './health.js'
import { describe, type Logger, log, loggerOption, logMembership, logPeerState } from './log.js'
import { Hints } from './hints.js'
import { type MessageListener, PubSub, type PublishResult } from './pubsub.js'
import { Membership } from './membership.js'
import { Readiness } from './readiness.js'
import { type MetricsOptions, type MetricsRegistry, type MetricsSource, registerMetrics } from './metrics.js'
import { type Lease, type LockService, type LockState, lockService } from './lock-service.js'
import { type ListenOptions, type LockOptions, PEER_OPTION_NAMES, type PeerOptions } from './options.js'
import { MAX_BATCH_KEYS } from './protocol.js'
import { createHttpProbe, type HttpProbe } from './probe.js'
import { Ring } from './ring.js'
import { createPeerServer, warnIfExposed } from './listen.js'
import { createHandler, type Handler } from './server.js'
import { StreamServer } from './stream-answer.js'
import { definedOnly, flag, integer, knownOptions } from './validate.js'

export type { ListenOptions, PeerOptions } from './options.js'

export class Peer {
  /** This peer's identity: the origin of `options.self`. */
  readonly self: string
  /**
   * The peer protocol as a node:http request listener, to mount in a server of your own:
   * `http.createServer(peer.handler)`, or `app.use(peer.handler)` (requests outside the base path go to `next`).
   */
  readonly handler: Handler
  /**
   * The peer stream's 'upgrade' listener, for a server of your own that mounts `handler`:
   * `server.on('upgrade', peer.upgrade)`, or `peer.attach(server)`. Upgrades to other paths are left
   * to other listeners (a WebSocket server on the same port). Without it, peers fetch by batch.
   */
  readonly upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void
  readonly #streams: StreamServer
  readonly #vnodes: number
  readonly #fetchTimeoutMs: number
  readonly #probeTimeoutMs: number
  readonly #client: PeerClient
  readonly #groups = new Map<string, Group<unknown>>()
  readonly #membership: Membership
  readonly #health: PeerHealth
  readonly #probe: HttpProbe
  readonly #healProbe: HttpProbe
  readonly #log: Logger
  readonly #auth: Auth | undefined
  #server: http.Server | undefined
  #closing: Promise<void> | undefined
  /** Undoes each registerMetrics call (on close). */
  readonly #unregister: (() => void)[] = []

  readonly #backups: Backups | undefined
  readonly #locks: LockService
  readonly #pubsub: PubSub
  readonly #handOffMs: number
  readonly #handOffBytes: number
  /** Restores from backups started by peer.group(), in the order of the groups. */
  readonly #restores: Promise<BackupRestore>[] = []

  constructor(options: PeerOptions) {
    if (options === null || typeof options !== 'object')
      throw new InvalidOptionError('options', 'new Peer({ self, peers }) needs an options object')
    knownOptions('PeerOptions', options, PEER_OPTION_NAMES)
    const o = { ...PEER_DEFAULTS, ...definedOnly(options) }
    this.self = peerUrl('self', options.self)
    this.#log = loggerOption(options.logger)
    this.#vnodes = integer('vnodes', o.vnodes, 1, 10_000)
    if (!/^\/([A-Za-z0-9._~-]+\/)*$/.test(o.basePath))
      throw new InvalidOptionError('basePath', `must start and end with "/", got ${JSON.stringify(o.basePath)}`)
    const ring = this.#buildRing(options.peers ?? [])
    this.#handOffMs = integer('handOffMs', o.handOffMs, 0)
    this.#handOffBytes = integer('handOffBytes', o.handOffBytes, 0)
    this.#backups =
      options.backup === undefined
        ? undefined
        : new Backups(
            options.backup,
            () => this.#groups.values(),
            (err) => log(this.#log, 'error', { self: this.self, error: describe(err) }, 'a backup failed'),
          )
    // Timeouts and counts feed undici, which takes only integers (a fraction failed every request).
    this.#fetchTimeoutMs = integer('fetchTimeoutMs', o.fetchTimeoutMs, 1)
    this.#auth = options.auth === undefined ? undefined : new Auth(options.auth)
    // Versions are µs of the writer's clock: one further ahead of ours than the allowed skew is a lie.
    const maxVersionAheadMs = this.#auth?.maxSkewMs ?? AUTH_DEFAULTS.maxSkewMs
    if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object'))
      throw new InvalidOptionError('tls', 'must be an object { ca, cert, key }')
    this.#client = new PeerClient({
      self: this.self,
      basePath: o.basePath,
      connectTimeoutMs: integer('connectTimeoutMs', o.connectTimeoutMs, 1),
      peerTimeoutMs: integer('peerTimeoutMs', o.peerTimeoutMs, 1),
      fetchTimeoutMs: this.#fetchTimeoutMs,
      connections: integer('connections', o.connections, 1),
      peerStreams: flag('peerStreams', o.peerStreams),
      pipelining: integer('pipelining', o.pipelining, 1),
      keepAliveTimeoutMs: integer('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 1),
      maxBatchKeys: integer('maxBatchKeys', o.maxBatchKeys, 1, MAX_BATCH_KEYS),
      onStall: (p) => {
        if (this.#membership.isMember(p)) this.#health.check(p)
      },
      auth: this.#auth,
      tls: options.tls,
      maxVersionAheadMs,
    })
    const probeTimeoutMs = integer('probeTimeoutMs', o.probeTimeoutMs, 1)
    this.#probeTimeoutMs = probeTimeoutMs
    const probeOptions = { basePath: o.basePath, self: this.self, timeoutMs: probeTimeoutMs, auth: this.#auth, tls: options.tls }
    this.#probe = createHttpProbe(probeOptions)
    // The hint watch's probes, on connections of their own (see Membership's confirmAndReplay).
    this.#healProbe = createHttpProbe(probeOptions)
    const onChange = options.onPeerStateChange
    this.#health = new PeerHealth({
      probe: this.#probe.probe,
      probeTimeoutMs,
      onChange: (p, from, to, reason) => this.#peerStateChanged(p, from, to, reason, onChange),
    })
    const readyTimeoutMs = integer('readyTimeoutMs', o.readyTimeoutMs, 1)
    const readiness = new Readiness(!flag('awaitPeers', o.awaitPeers), readyTimeoutMs, () =>
      log(
        this.#log,
        'warn',
        { self: this.self, readyTimeoutMs },
        'no membership yet (setPeers) after readyTimeoutMs: going on with the peers known so far',
      ),
    )
    this.#membership = new Membership({
      readiness,
      healProbe: { probe: this.#healProbe.probe, timeoutMs: probeTimeoutMs },
      self: this.self,
      ring,
      health: this.#health,
      transport: this.#client,
      limit: pLimit(integer('fanOut', o.fanOut, 1)),
      hints: new Hints(hintBounds(options.hints)),
      replicaPeekMs: integer('replicaPeekMs', o.replicaPeekMs, 0),
    })
    this.#locks = lockService(options.locks, this.#membership, this.#client, (name, err) =>
      log(this.#log, 'warn', { self: this.self, lock: name, error: describe(err) }, 'a lock grant could not be recorded on its replicas'),
    )
    this.#pubsub = new PubSub({
      membership: this.#membership,
      transport: this.#client,
      maxMessageBytes: integer('maxMessageBytes', o.maxMessageBytes, 1),
      maxQueuedMessages: integer('maxQueuedMessages', o.maxQueuedMessages, 1),
    })
    this.handler = createHandler({
      basePath: o.basePath,
      group: (name) => this.#groups.get(name)?.ownerSide,
      closing: () => this.#membership.closed,
      notReady: () => readiness.reason,
      // A peer announcing a graceful leave is routed around at once (and probed until it is back).
      resync: (p) => {
        if (p === this.self || !this.#membership.isMember(p)) return
        for (const group of this.#groups.values()) group.ownerSide.dropAll()
      },
      left: (p) => {
        if (p !== this.self && this.#membership.members().includes(p)) {
          log(this.#log, 'info', { self: this.self, peer: p }, `peer ${p} says it leaves`)
          this.#health.markDown(p)
        }
      },
      auth: this.#auth,
      maxVersionAheadMs,
      maxBatchBytes: integer('maxBatchBytes', o.maxBatchBytes, 1),
      profiling: flag('profiling', o.profiling),
      locks: this.#locks.routes(maxVersionAheadMs),
      pubsub: this.#pubsub,
    })
    this.#streams = new StreamServer({
      basePath: o.basePath,
      group: (name) => this.#groups.get(name)?.ownerSide,
      closing: () => this.#membership.closed,
      auth: this.#auth,
      maxBatchBytes: integer('maxBatchBytes', o.maxBatchBytes, 1),
    })
    this.upgrade = (req, socket, head) => this.#streams.upgrade(req, socket, head)
    this.#backups?.start()
  }

  /** Attaches the peer stream's upgrade listener (`upgrade`) to a server of your own that mounts `handler`. */
  attach(server: http.Server): void {
    server.on('upgrade', this.upgrade)
  }

  /**
   * Waits for the lease lock `name` (README, "Locks") and resolves once this caller holds it: its
   * fencing token, and `release()`. Hosted by the owner of `name` on the ring. Rejects at once with
   * an AbortError when `signal` aborts (its cause: the signal's reason), InvalidLockError for
   * a bad name or options, LockError `queue-full`, ClosedError once the peer is closed.
   */
  lock(name: string, options?: LockOptions): Promise<Lease> {
    if (this.#closing) return Promise.reject(new ClosedError())
    return this.#locks.lock(name, options)
  }

  /**
   * What this process knows of the lock `name`, as its owner or one of its replicas: the live lease
   * (its token and when it ends, Date.now() ms), the last token granted, and how many callers wait
   * here (at the owner). For operators and tests; `peer.lock()` is how a lease is had.
   */
  lockState(name: string): LockState {
    return this.#locks.state(name)
  }

  /**
   * Sends `message` (a Uint8Array as bytes, anything else as JSON) to the subscribers of `channel` on
   * every member, this one included (README, "Publish/subscribe"); resolves with the members that took
   * it and those that could not be reached. At most once: nothing is kept for an unreachable member.
   */
  publish(channel: string, message: unknown): Promise<PublishResult> {
    if (this.#closing) return Promise.reject(new ClosedError())
    return this.#pubsub.publish(channel, message)
  }

  /** `listener(message, { channel, origin })` for each message published to `channel` by any member; returns the unsubscribe. */
  subscribe(channel: string, listener: MessageListener): () => void {
    return this.#pubsub.subscribe(channel, listener)
  }

  /** Pub/sub messages dropped because a subscriber's queue was full (maxQueuedMessages). */
  get messagesDropped(): number {
    return this.#pubsub.dropped
  }

  /** The current members, sorted. */
  get peers(): readonly string[] {
    return this.#membership.members()
  }

  /**
   * Creates a group. Throws InvalidGroupError for a bad or taken name, InvalidOptionError for bad options.
   * A group given `absentTtlMs` gets `undefined` for absent keys, and is typed so (even for 0: types cannot see values).
   */
  group(name: string, options: GroupOptions<Buffer | undefined> & { codec?: 'bytes'; absentTtlMs: number }): Group<Buffer | undefined>
  group(name: string, options: GroupOptions<Buffer> & { codec?: 'bytes' }): Group<Buffer>
  group(name: string, options: GroupOptions<string | undefined> & { codec: 'string'; absentTtlMs: number }): Group<string | undefined>
  group(name: string, options: GroupOptions<string> & { codec: 'string' }): Group<string>
  group<T = unknown>(name: string, options: GroupOptions<T> & { codec: 'json' | Codec<T> }): Group<T>
  group<T>(name: string, options: GroupOptions<T>): Group<T> {
    if (this.#closing) throw new ClosedError()
    if (typeof name === 'string' && this.#groups.has(name)) throw new InvalidGroupError(name, 'a group of that name exists already')
    const group = new Group<T>(name, options, this.#membership)
    // Private fields make Group invariant in T; the map holds groups of every value type.
    this.#groups.set(name, group as unknown as Group<unknown>)
    if (this.#backups?.restoreOnStart) this.#restores.push(this.#restoreBackup(group as unknown as Group<unknown>))
    return group
  }

  /** The group of that name, if any. */
  getGroup<T = unknown>(name: string): Group<T> | undefined {
    return this.#groups.get(name) as Group<T> | undefined
  }

  /** Every group of this peer, in the order they were made. */
  groups(): Group<unknown>[] {
    return [...this.#groups.values()]
  }

  /**
   * Exports this peer's metrics to a prom-client Registry (README, "Observability"): every group,
   * present and future, its caches, and the health of the other peers, read when Prometheus
   * scrapes; load and peer fetch durations from the tracing channels. prom-client (an optional peer
   * dependency) must be installed. One Peer per registry. Returns a function that removes the
   * metrics again; close() does that too. Throws InvalidOptionError, registering nothing, for
   * something other than a Registry, a registry that has peercache metrics already, or no prom-client.
   */
  registerMetrics(registry: MetricsRegistry, options?: MetricsOptions): () => void {
    if (this.#closing) throw new ClosedError()
    const membership = this.#membership
    const source: MetricsSource = {
      self: this.self,
      get peers() {
        return membership.members()
      },
      groups: () => this.groups(),
      health: () => this.health(),
      hints: () => membership.hints.size,
      locks: () => this.#locks.table.stats(),
    }
    const unregister = registerMetrics(source, registry, options)
    this.#unregister.push(unregister)
    return unregister
  }

  /** Replaces the membership. Keys move only to or from the peers that joined or left (about 1/N each). */
  setPeers(peers: readonly string[]): void {
    if (this.#closing) throw new ClosedError()
    const before = this.#membership.members()
    const ring = this.#buildRing(peers)
    this.#membership.setRing(ring)
    const others = ring.peers.filter((p) => p !== this.self)
    void this.#membership.readiness.membersKnown(others, this.#probe.probe, this.#probeTimeoutMs)
    this.#client.retain(ring.peers)
    for (const p of before) {
      if (ring.peers.includes(p)) continue
      this.#health.forget(p)
      this.#membership.hints.forget(p)
    }
    logMembership(this.#log, this.self, before, ring.peers)
  }

  /**
   * Resolves once the membership is known: at once for a peer given its `peers`; with `awaitPeers`,
   * at the first `setPeers()` (the first discovery answer). Rejects with ClosedError if the peer
   * closes first. Until then the health endpoint answers 503 `starting`.
   */
  ready(): Promise<void> {
    return this.#membership.readiness.whenReady()
  }

  /** What this process knows of each other peer's health: up, suspect or down, and why. */
  health(): PeerHealthSnapshot[] {
    return this.#health.snapshot(this.#membership.members().filter((p) => p !== this.self))
  }

  /**
   * Serves the peer protocol on its own HTTP server (HTTPS with `tls`), on 127.0.0.1 unless a host
   * is given; binding another address without `auth` warns once. Resolves with the bound address.
   */
  async listen(options: ListenOptions = {}): Promise<{ port: number; host: string }> {
    if (this.#closing) throw new ClosedError()
    if (this.#server) throw new InvalidOptionError('listen', 'this peer is listening already')
    const host = options.host ?? LISTEN_DEFAULTS.host
    const server = createPeerServer(this.handler, options)
    server.on('upgrade', (req, socket, head) => this.#streams.upgrade(req, socket, head, true))
    this.#server = server
    warnIfExposed(host, this.#auth !== undefined)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? LISTEN_DEFAULTS.port, host, () => {
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
  /** Saves every group to the backup directory now; resolves with the files written. Needs the `backup` option. */
  backup(): Promise<string[]> {
    if (this.#backups === undefined) return Promise.reject(new InvalidOptionError('backup', 'this peer was made without backup: { dir }'))
    return this.#backups.save()
  }

  /** What each group created so far restored from its newest backup at creation (backup.restoreOnStart). */
  restored(): Promise<BackupRestore[]> {
    return Promise.all(this.#restores)
  }

  async #restoreBackup(group: Group<unknown>): Promise<BackupRestore> {
    const backups = this.#backups!
    try {
      const restored = await backups.restore(group)
      if (restored.file)
        log(this.#log, 'info', { self: this.self, group: group.name, file: restored.file, ...restored.result }, 'restored a backup')
      return restored
    } catch (err) {
      log(this.#log, 'error', { self: this.self, group: group.name, error: describe(err) }, 'could not restore a backup')
      return { group: group.name, file: undefined, result: undefined }
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    // Not ready from now on: the health endpoint says closing, so an orchestrator stops sending traffic.
    this.#membership.readiness.close()
    // Before announcing: the peers that will own this one's keys get them while it still serves.
    await this.#handOff()
    // Announce first and keep answering meanwhile: a peer that has not heard yet is still served.
    const others = this.#membership.members().filter((p) => p !== this.self)
    log(this.#log, 'info', { self: this.self, peers: others.length }, 'leaving: telling the other peers')
    const told = await Promise.allSettled(others.map((p) => this.#membership.limit(() => this.#client.leave(p))))
    told.forEach((r, i) => {
      // It routes around this peer all the same once its requests fail, and is often down itself: news, not a warning.
      if (r.status === 'rejected')
        log(
          this.#log,
          'info',
          { self: this.self, peer: others[i], error: describe(r.reason) },
          'could not tell a peer that this one leaves',
        )
    })
    this.#membership.close()
    // Waiters here are told at once (remote ones ask the next owner, which knows the leases from its records).
    this.#locks.close()
    this.#pubsub.close()
    await this.#health.close()
    await this.#probe.close()
    await this.#healProbe.close()
    const server = this.#server
    this.#server = undefined
    // Upgraded sockets are not the server's any more: its close does not wait for them, nor cut them.
    const streams = this.#streams.close(this.#fetchTimeoutMs)
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      // Requests under way get fetchTimeoutMs to finish; then their connections are cut.
      const cut = setTimeout(() => server.closeAllConnections(), this.#fetchTimeoutMs)
      await closed
      clearTimeout(cut)
    }
    await streams
    // Requests from peers are finished (or cut); what still loads has nobody left to serve but
    // this process's own callers, who asked a closed peer: stop it.
    for (const group of this.#groups.values()) group.close(new ClosedError())
    // What it holds now, after the last requests, is what the next start restores.
    await this.#backups?.close().catch((err) => log(this.#log, 'error', { self: this.self, error: describe(err) }, 'last backup failed'))
    await this.#client.close()
    for (const unregister of this.#unregister.splice(0)) unregister()
  }

  /** Failure detection moved `p` from `from` to `to`: what follows from it, the log line, then the user's callback. */
  #peerStateChanged(p: string, from: PeerState, to: PeerState, reason: HealthReason, onChange: PeerOptions['onPeerStateChange']): void {
    // Gets waiting on a peer that is now down move on to its replica instead of waiting out fetchTimeoutMs.
    if (to === 'down') this.#client.abortPeer(p, `marked down (${reason})`)
    // Back: the writes it missed meanwhile are replayed, so it stops serving what they replaced.
    if (to === 'up') void this.#membership.replayHints(p)
    // Back after it was down (a restart, a deploy): it gets the entries it should hold.
    if (to === 'up' && from === 'down') void this.#handBack(p)
    // A peer down or back moves its keys: their new owner may have missed writes its replicas kept.
    if (to === 'down' || from === 'down') this.#membership.routingChanged()
    const lastError = to === 'down' ? this.#health.snapshot().find((s) => s.peer === p)?.lastError : undefined
    logPeerState(this.#log, this.self, { peer: p, from, to, reason, lastError })
    try {
      onChange?.(p, from, to, reason)
    } catch (err) {
      // Failure detection goes on (it makes the error a process warning); the log says whose callback failed.
      log(this.#log, 'error', { self: this.self, peer: p, error: describe(err) }, 'onPeerStateChange threw')
      throw err
    }
  }

  /** Copies the entries this peer holds to their holders-to-be (handoff.ts), within handOffMs and handOffBytes. */
  async #handOff(): Promise<void> {
    if (this.#membership.members().length < 2) return
    const holdersAfter = this.#membership.holdersWithout(this.self)
    await this.#copyEntries('handed off the entries this peer holds', (group, budget) => group.handOff(holdersAfter, budget))
  }

  /** Copies to `peer`, back after it was down, the entries it should hold (handoff.ts), within handOffMs and handOffBytes. */
  async #handBack(peer: string): Promise<void> {
    if (this.#closing) return
    await this.#copyEntries(`handed back to ${peer} the entries it holds`, (group, budget) => group.handBack(peer, budget), { peer })
  }

  async #copyEntries(what: string, copy: (group: Group<unknown>, budget: HandOffBudget) => Promise<void>, fields = {}): Promise<void> {
    if (this.#handOffMs === 0) return
    const budget: HandOffBudget = { deadline: Date.now() + this.#handOffMs, bytesLeft: this.#handOffBytes, sent: 0, left: 0 }
    try {
      for (const group of this.#groups.values()) await copy(group, budget)
    } catch (err) {
      log(this.#log, 'error', { self: this.self, ...fields, error: describe(err) }, `${what}: failed`)
    }
    log(this.#log, 'info', { self: this.self, ...fields, sent: budget.sent, left: budget.left }, what)
  }

  #buildRing(peers: readonly string[]): Ring {
    if (!Array.isArray(peers)) throw new InvalidOptionError('peers', 'must be an array of URLs')
    const urls = peers.map((p, i) => peerUrl(`peers[${i}]`, p))
    return new Ring([this.self, ...urls], this.#vnodes)
  }
}

/** The hints option, checked: integers within reason, defaults for what is left out. */
function hintBounds(hints: PeerOptions['hints']): { maxHints: number; maxBytes: number; maxAgeMs: number } {
  if (hints !== undefined && (hints === null || typeof hints !== 'object')) throw new InvalidOptionError('hints', 'must be an object')
  knownOptions('hints', hints ?? {}, Object.keys(HINTS_DEFAULTS))
  const o = { ...HINTS_DEFAULTS, ...definedOnly(hints ?? {}) }
  return {
    maxHints: integer('hints.maxHints', o.maxHints, 0),
    maxBytes: integer('hints.maxBytes', o.maxBytes, 0),
    maxAgeMs: integer('hints.maxAgeMs', o.maxAgeMs, 0),
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
