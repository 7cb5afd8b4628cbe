// Membership from DNS: a name that resolves to every peer's address (a Kubernetes headless Service,
// a Consul service) is resolved at an interval and the peers' URLs are handed to a callback, usually
// `peer.setPeers`. It uses only the Peer's public surface, so an app that lists peers itself can leave
// it out. A DNS blip must not empty the ring: a failed or empty answer keeps the last good list.
import { Resolver } from 'node:dns/promises'
import { isIPv6 } from 'node:net'
import { DISCOVERY_DEFAULTS } from './defaults.js'
import { ClosedError, InvalidOptionError, PeercacheError } from './errors.js'
import type { Peer } from './peer.js'
import { definedOnly } from './validate.js'

/** What discovery needs of a resolver; a `node:dns/promises` Resolver fits. */
export interface DnsResolver {
  resolve4(name: string): Promise<string[]>
  resolve6(name: string): Promise<string[]>
}

export interface DnsDiscoveryOptions {
  /**
   * The DNS name whose A/AAAA records are the peers, e.g. a headless Service
   * `peercache.default.svc.cluster.local` or Consul's `peercache.service.consul`. Give it fully
   * qualified: the default resolver queries it as written, without resolv.conf search domains. Required.
   */
  name: string
  /** The TCP port every peer serves the peer protocol on, e.g. 7001. Required. */
  port: number
  /**
   * The scheme of the peers' URLs.
   * @default {@link DISCOVERY_DEFAULTS}.protocol (`'http'`)
   */
  protocol?: 'http' | 'https'
  /**
   * Time between the end of one resolution and the start of the next, in ms. Changes reach the ring
   * within about this plus the record's DNS TTL.
   * @default {@link DISCOVERY_DEFAULTS}.intervalMs (5000)
   */
  intervalMs?: number
  /**
   * Which record types to ask for: 4 = A, 6 = AAAA. Ignored with `lookup`.
   * @default {@link DISCOVERY_DEFAULTS}.families (`[4, 6]`)
   */
  families?: readonly (4 | 6)[]
  /**
   * The resolver to ask, e.g. a `new Resolver()` from `node:dns/promises` after `setServers([...])`.
   * Default: a Resolver on the system's DNS servers with a 2000 ms timeout per try and 2 tries.
   */
  resolver?: DnsResolver
  /**
   * Instead of `resolver`: a function giving the addresses (or host names) for `name`; an empty
   * array counts as no answer, a rejection as a failure. For example, to go through getaddrinfo
   * (/etc/hosts, search domains): `async (n) => (await dns.promises.lookup(n, { all: true })).map((a) => a.address)`.
   */
  lookup?: (name: string) => Promise<readonly string[]>
  /**
   * Called with the peers' URLs (origins, sorted, no duplicates) after the first good resolution and
   * then only when the list changed. If it throws, the error goes to `onError` and the same list is
   * offered again at the next resolution. Required.
   */
  onPeers: (urls: readonly string[]) => void
  /**
   * Called on each failed or empty resolution (the last good list stays) and when `onPeers` throws.
   * Default: a process warning for the first failure after a success, nothing for the repeats.
   */
  onError?: (err: DiscoveryError) => void
}

export type DiscoveryFailure = 'resolve' | 'empty' | 'invalid-address' | 'callback'

/** A resolution that gave no usable list, or an `onPeers` that threw. The last good list stays. */
export class DiscoveryError extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_DISCOVERY'
  constructor(
    /** The DNS name that was resolved. */
    readonly hostname: string,
    /** What went wrong: the resolver failed, it had no addresses, an address made no URL, or onPeers threw. */
    readonly reason: DiscoveryFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`peercache: discovery of ${hostname}: ${message}`, options)
  }
}

// Answers that mean "no such records" rather than "could not ask": the other family may still have some.
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND'])

export class DnsDiscovery {
  readonly #name: string
  readonly #port: number
  readonly #protocol: 'http' | 'https'
  readonly #intervalMs: number
  readonly #lookup: (name: string) => Promise<readonly string[]>
  readonly #onPeers: (urls: readonly string[]) => void
  readonly #onError: ((err: DiscoveryError) => void) | undefined
  #peers: readonly string[] | undefined
  #failures = 0
  #timer: NodeJS.Timeout | undefined
  // A new start() bumps it, so a resolution begun before stop() neither calls back nor reschedules.
  #generation = 0
  #running = false
  // Resolutions run one at a time, in order; a refresh() waits for the one under way.
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: DnsDiscoveryOptions) {
    if (options === null || typeof options !== 'object')
      throw new InvalidOptionError('options', 'new DnsDiscovery({ name, port, onPeers }) needs an options object')
    const { name, port, resolver, lookup, onPeers, onError } = options
    const { protocol, intervalMs, families } = { ...DISCOVERY_DEFAULTS, ...definedOnly(options) }
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', 'must be a non-empty DNS name')
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new InvalidOptionError('port', `must be an integer from 1 to 65535, got ${String(port)}`)
    if (protocol !== 'http' && protocol !== 'https')
      throw new InvalidOptionError('protocol', `must be 'http' or 'https', got ${String(protocol)}`)
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs <= 0)
      throw new InvalidOptionError('intervalMs', `must be a positive number, got ${String(intervalMs)}`)
    if (!Array.isArray(families) || families.length === 0 || families.some((f) => f !== 4 && f !== 6))
      throw new InvalidOptionError('families', 'must be a non-empty array of 4 and/or 6')
    if (typeof onPeers !== 'function') throw new InvalidOptionError('onPeers', 'must be a function, e.g. (urls) => peer.setPeers(urls)')
    if (onError !== undefined && typeof onError !== 'function') throw new InvalidOptionError('onError', 'must be a function')
    if (resolver !== undefined && lookup !== undefined) throw new InvalidOptionError('lookup', 'give either resolver or lookup, not both')
    if (lookup !== undefined && typeof lookup !== 'function') throw new InvalidOptionError('lookup', 'must be a function')
    this.#name = name
    this.#port = port
    this.#protocol = protocol
    this.#intervalMs = intervalMs
    this.#lookup = lookup ?? resolveAll(resolver ?? new Resolver({ timeout: 2000, tries: 2 }), families)
    this.#onPeers = onPeers
    this.#onError = onError
  }

  /** The last list given to `onPeers`, or undefined before the first good resolution. */
  get peers(): readonly string[] | undefined {
    return this.#peers
  }

  /** Whether resolutions are scheduled (between start() and stop()). */
  get running(): boolean {
    return this.#running
  }

  /**
   * Resolves now, then every `intervalMs` until stop(). Resolves when the first resolution has
   * settled, well or not (a failure goes to `onError`), so `await start()` never rejects.
   * Calling it while running does nothing more.
   */
  start(): Promise<void> {
    if (this.#running) return this.#queue.then(() => undefined)
    this.#running = true
    const generation = ++this.#generation
    return this.#tick(generation)
  }

  /** Stops the schedule. A resolution under way finishes but no longer calls back. */
  stop(): void {
    this.#running = false
    this.#generation++
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /**
   * Resolves once now, whether or not started, after any resolution under way; calls back as a
   * scheduled resolution would. Resolves with the current list (the last good one if this failed).
   */
  refresh(): Promise<readonly string[] | undefined> {
    return this.#enqueue(() => true)
  }

  #tick(generation: number): Promise<void> {
    const current = () => this.#running && this.#generation === generation
    return this.#enqueue(current).then(() => {
      if (!current()) return
      this.#timer = setTimeout(() => void this.#tick(generation), this.#intervalMs)
      // Discovery alone must not keep a process alive.
      this.#timer.unref()
    })
  }

  #enqueue(deliver: () => boolean): Promise<readonly string[] | undefined> {
    const run = this.#queue.then(() => this.#resolveOnce(deliver))
    this.#queue = run
    return run
  }

  async #resolveOnce(deliver: () => boolean): Promise<readonly string[] | undefined> {
    let urls: string[]
    try {
      urls = this.#toUrls(await this.#lookup(this.#name))
    } catch (err) {
      if (deliver())
        this.#fail(
          err instanceof DiscoveryError
            ? err
            : new DiscoveryError(this.#name, 'resolve', (err as Error)?.message ?? String(err), { cause: err }),
        )
      return this.#peers
    }
    if (!deliver()) return this.#peers
    if (urls.length === 0) {
      this.#fail(new DiscoveryError(this.#name, 'empty', 'no addresses; keeping the last list'))
      return this.#peers
    }
    this.#failures = 0
    if (this.#peers !== undefined && sameList(this.#peers, urls)) return this.#peers
    try {
      this.#onPeers(urls)
    } catch (err) {
      // Not recorded as delivered, so the next resolution offers the list again.
      this.#fail(new DiscoveryError(this.#name, 'callback', `onPeers threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }))
      return this.#peers
    }
    this.#peers = urls
    return urls
  }

  /** Sorted, de-duplicated origins; IPv6 addresses bracketed. Throws a DiscoveryError for an address that makes no URL. */
  #toUrls(addresses: readonly string[]): string[] {
    if (!Array.isArray(addresses)) throw new DiscoveryError(this.#name, 'resolve', `the lookup gave ${typeof addresses}, not an array`)
    const origins = new Set<string>()
    for (const address of addresses) {
      const invalid = (cause?: unknown) =>
        new DiscoveryError(this.#name, 'invalid-address', `${JSON.stringify(address)} is not a bare address or host name`, { cause })
      // A path, query, user or bracket would let the URL parser drop the port or the host silently.
      if (typeof address !== 'string' || !/^[^/?#@\s[\]]+$/.test(address)) throw invalid()
      try {
        // The URL parser canonicalises (IPv6 compression, lower case, default port), as Peer does.
        origins.add(new URL(`${this.#protocol}://${isIPv6(address) ? `[${address}]` : address}:${this.#port}`).origin)
      } catch (err) {
        throw invalid(err)
      }
    }
    return [...origins].sort()
  }

  #fail(err: DiscoveryError): void {
    this.#failures++
    if (this.#onError === undefined) {
      if (this.#failures === 1) process.emitWarning(err)
      return
    }
    try {
      this.#onError(err)
    } catch (thrown) {
      // An error handler that throws is a bug in the app: surface it as Node does for listeners, not in our queue.
      process.nextTick(() => {
        throw thrown
      })
    }
  }
}

/**
 * Starts a DnsDiscovery that keeps `peer`'s membership (`setPeers`) to the name's records, and
 * resolves with it once the first resolution has settled. Stop it with `stop()` when closing the
 * peer; it also stops by itself the first time it finds the peer closed.
 */
export async function discover(peer: Pick<Peer, 'setPeers'>, options: Omit<DnsDiscoveryOptions, 'onPeers'>): Promise<DnsDiscovery> {
  const discovery: DnsDiscovery = new DnsDiscovery({
    ...options,
    onPeers: (urls) => {
      try {
        peer.setPeers(urls)
      } catch (err) {
        if (!(err instanceof ClosedError)) throw err
        discovery.stop()
      }
    },
  })
  await discovery.start()
  return discovery
}

/** A lookup over A and/or AAAA records; a failure of either family (other than "no records") fails it. */
function resolveAll(resolver: DnsResolver, families: readonly (4 | 6)[]): (name: string) => Promise<string[]> {
  const one = async (name: string, family: 4 | 6): Promise<string[]> => {
    try {
      return await (family === 4 ? resolver.resolve4(name) : resolver.resolve6(name))
    } catch (err) {
      if (NO_RECORDS.has((err as NodeJS.ErrnoException)?.code ?? '')) return []
      throw err
    }
  }
  return async (name) => (await Promise.all([...new Set(families)].map((f) => one(name, f)))).flat()
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
