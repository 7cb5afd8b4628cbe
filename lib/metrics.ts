// Prometheus metrics through prom-client, an optional peer dependency: it is loaded only when
// metrics are registered, so peercache runs without it. Nothing is counted on a get for them:
// counters and gauges read group.stats() and peer health when Prometheus scrapes (prom-client's
// collect callbacks), so the local-hit path is unchanged; durations come from the tracing channels
// (tracing.ts), which only origin loads and requests to peers go through.
// Just over 300 lines: one declaration per metric, each with its help text; no logic to split out.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import type * as Prom from 'prom-client'
import { InvalidOptionError, LoadError, InvalidValueError } from './errors.js'
import type { PeerHealthSnapshot } from './health.js'
import type { LockTableStats } from './locks.js'
import type { GroupStats } from './options.js'
import { type FetchTraceContext, fetchChannel, type LoadTraceContext, loadChannel } from './tracing.js'

/**
 * The part of a prom-client `Registry` that peercache uses. Declared here, structurally, so that
 * peercache's types do not need prom-client installed; pass a real `new Registry()` (or `register`).
 */
export interface MetricsRegistry {
  registerMetric(metric: object): void
  getSingleMetric(name: string): unknown
  removeSingleMetric(name: string): void
}

export interface MetricsOptions {
  /**
   * Upper bounds of the `peercache_load_duration_seconds` buckets, in seconds (an origin load).
   * Default: prom-client's, 0.005 to 10.
   */
  loadDurationBuckets?: number[]
  /**
   * Upper bounds of the `peercache_peer_fetch_duration_seconds` buckets, in seconds (one key's wait
   * for another peer). Default 0.0005 to 5.
   */
  fetchDurationBuckets?: number[]
}

/** What metrics read from a Peer. */
export interface MetricsSource {
  readonly self: string
  /** The members, this one included. */
  readonly peers: readonly string[]
  /** Every group now: asked at each scrape, so groups made after registering are covered too. */
  groups(): Iterable<{ stats(): GroupStats }>
  health(): PeerHealthSnapshot[]
  /** Writes kept for unreachable peers (hinted hand-off), and the bytes of the values they carry. */
  hints(): { hints: number; bytes: number }
  /** Lease locks hosted here (see LockTable.stats). */
  locks(): LockTableStats
}

/** `peercache_gets_total`'s sources and the counter each is read from. */
const GET_SOURCES = {
  main: 'mainHits',
  hot: 'hotHits',
  stale: 'staleHits',
  peer: 'peerGets',
  replica: 'replicaGets',
  load: 'loadGets',
  error: 'failedGets',
} as const satisfies Record<string, keyof GroupStats>

/** `peercache_server_requests_total`'s statuses: ok is what is left of serverRequests. */
const SERVER_STATUSES = { miss: 'serverMisses', error: 'serverErrors' } as const satisfies Record<string, keyof GroupStats>

/** Per-group counters read as they are: metric name (without `peercache_`) → [stats field, help]. */
const GROUP_COUNTERS = {
  deduped_gets_total: ['dedupedGets', 'Gets that joined a load or fetch of the same key already under way instead of starting one'],
  sets_total: ['sets', 'Calls to set()'],
  removes_total: ['removes', 'Calls to remove()'],
  replica_writes_total: ['replicaWrites', 'Copies of values received from their owners, as a replica'],
  conflicts_total: ['conflicts', 'Conditional sets made here (ifVersion, ifAbsent, update) refused by the owner'],
  events_dropped_total: ['eventsDropped', 'Change events dropped because a listener queue was full (maxQueuedEvents)'],
} as const satisfies Record<string, readonly [keyof GroupStats, string]>

const CACHES = ['main', 'hot'] as const
const LOAD_OUTCOMES = ['ok', 'error', 'timeout'] as const

/** prom-client's default buckets, in seconds: an origin load takes milliseconds to seconds. */
const DEFAULT_LOAD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** A key's wait for a peer: a fraction of a millisecond on a LAN, up to the fetch timeout. */
const DEFAULT_FETCH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const requireHere = createRequire(import.meta.url)

/** prom-client, loaded on first use (it is an optional peer dependency). */
function promClient(): typeof Prom {
  try {
    return requireHere('prom-client') as typeof Prom
  } catch (err) {
    throw new InvalidOptionError('registry', `metrics need the prom-client package (npm install prom-client): ${(err as Error).message}`)
  }
}

/**
 * Registers peercache's metrics for `source` with `registry`. Returns a function that removes them
 * and stops listening to the tracing channels. Throws InvalidOptionError (nothing registered) for
 * something that is not a registry, a registry that already has peercache metrics, or no prom-client.
 */
export function registerMetrics(source: MetricsSource, registry: MetricsRegistry, options: MetricsOptions = {}): () => void {
  const methods = ['registerMetric', 'getSingleMetric', 'removeSingleMetric'] as const
  if (registry === null || typeof registry !== 'object' || methods.some((m) => typeof registry[m] !== 'function'))
    throw new InvalidOptionError('registry', 'must be a prom-client Registry (new Registry(), or prom-client’s register)')
  const prom = promClient()
  const metrics: Named[] = []
  const stats = () => Array.from(source.groups(), (g) => g.stats())

  const counter = collected(prom.Counter)
  const gauge = collected(prom.Gauge)
  metrics.push(
    counter('gets_total', 'Gets by callers in this process, by where the value came from', ['group', 'source'], (inc) => {
      for (const s of stats()) for (const [src, field] of Object.entries(GET_SOURCES)) inc({ group: s.group, source: src }, s[field])
    }),
    counter('server_requests_total', 'Keys requested by other peers and answered here, by status', ['group', 'status'], (inc) => {
      for (const s of stats()) {
        inc({ group: s.group, status: 'ok' }, s.serverRequests - s.serverMisses - s.serverErrors)
        for (const [status, field] of Object.entries(SERVER_STATUSES)) inc({ group: s.group, status }, s[field])
      }
    }),
    ...Object.entries(GROUP_COUNTERS).map(([name, [field, help]]) =>
      counter(name, help, ['group'], (inc) => {
        for (const s of stats()) inc({ group: s.group }, s[field])
      }),
    ),
    gauge('flights', 'Loads and fetches under way now', ['group'], (set) => {
      for (const s of stats()) set({ group: s.group }, s.inFlight)
    }),
    gauge(
      'peer_loads',
      'Origin loads for other peers: running now, and queued for a slot (past the queue, peers are refused)',
      ['group', 'state'],
      (set) => {
        for (const s of stats()) {
          set({ group: s.group, state: 'running' }, s.peerLoadsRunning)
          set({ group: s.group, state: 'queued' }, s.peerLoadsQueued)
        }
      },
    ),
    ...cacheMetrics(counter, gauge, stats),
    ...peerMetrics(gauge, counter, source),
    ...lockMetrics(gauge, counter, source),
  )
  const traced = tracedMetrics(prom, source.self, () => stats().map((s) => s.group), options)
  metrics.push(...traced.metrics)

  // The names as registered: an OpenMetrics registry renames its counters (drops _total) when it renders them.
  const names = metrics.map((m) => m.name)
  const taken = names.find((name) => registry.getSingleMetric(name) !== undefined)
  if (taken) {
    traced.unsubscribe()
    throw new InvalidOptionError('registry', `it has a metric named ${taken} already (one Peer per registry)`)
  }
  for (const m of metrics) registry.registerMetric(m)
  return () => {
    traced.unsubscribe()
    names.forEach((name, i) => {
      if (registry.getSingleMetric(name) === metrics[i]) registry.removeSingleMetric(name)
    })
  }
}

type Labels = Record<string, string>
/** prom-client's metrics carry their name, though its types do not say so. */
type Named = Prom.Metric & { readonly name: string }
type Make = (name: string, help: string, labelNames: string[], fill: (put: (labels: Labels, value: number) => void) => void) => Named

/**
 * Makes counters (or gauges) whose values are set afresh at each scrape: prom-client calls collect()
 * first, which clears the values (so label sets that are gone, like a peer that left, disappear)
 * and adds what `fill` reads from the stats.
 */
function collected(Kind: typeof Prom.Counter | typeof Prom.Gauge): Make {
  return (name, help, labelNames, fill) => {
    const metric: Prom.Counter | Prom.Gauge = new Kind({
      name: `peercache_${name}`,
      help,
      labelNames,
      registers: [],
      collect: () => {
        metric.reset()
        fill((labels, value) => metric.inc(labels, value))
      },
    })
    return metric as Named
  }
}

function cacheMetrics(counter: Make, gauge: Make, stats: () => GroupStats[]): Named[] {
  const each = (put: (labels: Labels, value: number) => void, read: (c: GroupStats['main']) => number) => {
    for (const s of stats()) for (const cache of CACHES) put({ group: s.group, cache }, read(s[cache]))
  }
  const labels = ['group', 'cache']
  return [
    gauge('cache_bytes', 'Bytes charged to the cache (values, keys and per-entry overhead)', labels, (set) => each(set, (c) => c.bytes)),
    gauge('cache_max_bytes', 'The cache’s byte budget', labels, (set) => each(set, (c) => c.maxBytes)),
    gauge('cache_items', 'Entries in the cache', labels, (set) => each(set, (c) => c.items)),
    counter('cache_evictions_total', 'Entries evicted to make room', labels, (inc) => each(inc, (c) => c.evictions)),
    counter('cache_expirations_total', 'Entries dropped at their expiry', labels, (inc) => each(inc, (c) => c.expirations)),
  ]
}

function peerMetrics(gauge: Make, counter: Make, source: MetricsSource): Named[] {
  // Health tracks only peers that ever failed; every other member is up.
  const others = () => {
    const known = new Map(source.health().map((h) => [h.peer, h]))
    return source.peers.filter((p) => p !== source.self).map((peer) => ({ peer, health: known.get(peer) }))
  }
  return [
    gauge('members', 'Members of the ring, this process included', [], (set) => set({}, source.peers.length)),
    gauge('peer_up', '1 while failure detection routes requests to the peer, 0 while it is suspect or down', ['peer'], (set) => {
      for (const { peer, health } of others()) set({ peer }, health === undefined || health.state === 'up' ? 1 : 0)
    }),
    counter('peer_downs_total', 'Times failure detection took the peer down', ['peer'], (inc) => {
      for (const { peer, health } of others()) inc({ peer }, health?.downs ?? 0)
    }),
    gauge('hints', 'Writes (sets, removes) kept for unreachable peers, waiting to be replayed when they are back', [], (set) => {
      set({}, source.hints().hints)
    }),
    gauge('hint_bytes', 'Bytes of the values that waiting hints carry', [], (set) => set({}, source.hints().bytes)),
  ]
}

function lockMetrics(gauge: Make, counter: Make, source: MetricsSource): Named[] {
  return [
    gauge('locks_held', 'Lease locks held now on names this process hosts (owns)', [], (set) => set({}, source.locks().held)),
    gauge('lock_waiters', 'Callers waiting here for a lease lock', [], (set) => set({}, source.locks().waiting)),
    counter('lock_grants_total', 'Lease locks granted by this process as their host', [], (inc) => inc({}, source.locks().grants)),
    counter('lock_releases_total', 'Lease locks released by their holders here', [], (inc) => inc({}, source.locks().releases)),
    counter('lock_expiries_total', 'Lease locks that ran out here before their holder released them', [], (inc) =>
      inc({}, source.locks().expiries),
    ),
  ]
}

/** Metrics fed by the tracing channels, for this peer's events only (peers may share a process). */
function tracedMetrics(
  prom: typeof Prom,
  self: string,
  groups: () => string[],
  options: MetricsOptions,
): { metrics: Named[]; unsubscribe(): void } {
  const loads = new prom.Counter({
    name: 'peercache_loads_total',
    help: 'Origin loads (loader calls) in this process, by outcome',
    labelNames: ['group', 'outcome'],
    registers: [],
    // Every group's series exist from the first scrape, at 0: rate() needs a sample before the first load.
    collect() {
      for (const group of groups()) for (const outcome of LOAD_OUTCOMES) this.inc({ group, outcome }, 0)
    },
  })
  const loadSeconds = new prom.Histogram({
    name: 'peercache_load_duration_seconds',
    help: 'How long origin loads took',
    labelNames: ['group'],
    buckets: options.loadDurationBuckets ?? DEFAULT_LOAD_BUCKETS,
    registers: [],
  })
  const fetches = new prom.Counter({
    name: 'peercache_peer_fetches_total',
    help: 'Keys requested from other peers, by outcome (ok, miss: a peek found nothing, error: the origin failed there, unavailable)',
    labelNames: ['group', 'peer', 'outcome'],
    registers: [],
  })
  const fetchSeconds = new prom.Histogram({
    name: 'peercache_peer_fetch_duration_seconds',
    help: 'How long a key requested from another peer waited for its answer',
    labelNames: ['group', 'peer'],
    buckets: options.fetchDurationBuckets ?? DEFAULT_FETCH_BUCKETS,
    registers: [],
  })
  const started = new WeakMap<object, number>()
  const onStart = (ctx: unknown) => {
    if ((ctx as { self: string }).self === self) started.set(ctx as object, performance.now())
  }
  const onLoadEnd = (message: unknown) => {
    const ctx = message as LoadTraceContext
    const t0 = started.get(ctx)
    if (t0 === undefined) return
    loads.inc({ group: ctx.group, outcome: 'error' in ctx ? (isTimeout(ctx.error) ? 'timeout' : 'error') : 'ok' })
    loadSeconds.observe({ group: ctx.group }, (performance.now() - t0) / 1000)
  }
  const onFetchEnd = (message: unknown) => {
    const ctx = message as FetchTraceContext
    const t0 = started.get(ctx)
    if (t0 === undefined) return
    fetches.inc({ group: ctx.group, peer: ctx.peer, outcome: fetchOutcome(ctx) })
    fetchSeconds.observe({ group: ctx.group, peer: ctx.peer }, (performance.now() - t0) / 1000)
  }
  const subscriptions = [
    [loadChannel.start, onStart],
    [loadChannel.asyncEnd, onLoadEnd],
    [fetchChannel.start, onStart],
    [fetchChannel.asyncEnd, onFetchEnd],
  ] as const
  for (const [channel, fn] of subscriptions) channel.subscribe(fn)
  return {
    metrics: [loads, loadSeconds, fetches, fetchSeconds] as Named[],
    unsubscribe: () => {
      for (const [channel, fn] of subscriptions) channel.unsubscribe(fn)
    },
  }
}

function fetchOutcome(ctx: FetchTraceContext): string {
  if (!('error' in ctx)) return ctx.result === undefined ? 'miss' : 'ok'
  // The peer answered that the origin failed (or gave a value the codec refused): the peer is fine.
  return ctx.error instanceof LoadError || ctx.error instanceof InvalidValueError ? 'error' : 'unavailable'
}

/** A loader that gave up on a deadline (AbortSignal.timeout's TimeoutError, or an error coded as a timeout). */
function isTimeout(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null
  return e?.name === 'TimeoutError' || (typeof e?.code === 'string' && /TIMEOUT/i.test(e.code))
}
