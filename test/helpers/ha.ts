// Clusters of real OS processes for the high-availability tests, on top of test/helpers/cluster.ts:
// the members run test/fixtures/ha-member.mjs (same IPC protocol as member.mjs, plus health, state
// changes and a load that records slow gets), driven through cluster.ts's Member.
import { type ChildProcess, fork } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { HealthReason, PeerHealthSnapshot, PeerState } from '../../lib/health.js'
import type { GroupStats, PeerOptions } from '../../lib/index.js'

/** The stats fields that are plain counts. */
type NumericStat = { [K in keyof GroupStats]: GroupStats[K] extends number ? K : never }[keyof GroupStats]
import { Cluster, type ClusterOptions, type GroupSpec, Member, type RemoteErrorInfo } from './cluster.js'
import type { Teardown } from './net.js'

export const HA_MEMBER = fileURLToPath(new URL('../fixtures/ha-member.mjs', import.meta.url))
export const COMMAND_TIMEOUT_MS = 20_000

/** What `workers` reports: counts, the first errors, and each get slower than `slowMs`. */
export interface WorkersReport {
  gets: number
  failed: number
  errors: (RemoteErrorInfo & { key: string })[]
  /** [key, started at (Date.now() ms), duration ms]. */
  slow: [string, number, number][]
  maxMs: number
  startedAt: number
  endedAt: number
}

export interface WorkersOptions {
  /** Concurrent workers. Default 4. */
  concurrency?: number
  /** Until then, in ms. Default 3000. */
  durationMs?: number
  /** Or until this many gets. Default 100,000. */
  maxGets?: number
  /** Pause of each worker between gets, in ms (0: one setImmediate). Default 0. */
  pauseMs?: number
  /** Gets at least this slow are recorded, in ms. Default 50. */
  slowMs?: number
  /** Random keys (seeded) or round-robin. Default 'random'. */
  order?: 'random' | 'cycle'
  seed?: number
}

/** A health change a member saw (from its onPeerStateChange). */
export interface Transition {
  peer: string
  from: PeerState
  to: PeerState
  reason: HealthReason
  at: number
}

export class HaMember extends Member {
  /** A steady, bounded load of gets over `keys` in this process. */
  workers(group: string, keys: string[], options: WorkersOptions = {}): Promise<WorkersReport> {
    return this.request('workers', { group, keys, ...options }, (options.durationMs ?? 3000) + COMMAND_TIMEOUT_MS)
  }

  /** Gets every key once from this process. */
  fill(group: string, keys: string[]): Promise<Pick<WorkersReport, 'gets' | 'failed' | 'errors'>> {
    return this.request('fill', { group, keys })
  }

  /** This process's peer.health(). */
  health(): Promise<PeerHealthSnapshot[]> {
    return this.request('health')
  }

  /** Every health change this process saw so far. */
  transitions(): Promise<Transition[]> {
    return this.request('transitions')
  }

  /** The state this process sees `other` in ('up' when it never failed). */
  async stateOf(other: HaMember): Promise<PeerState> {
    return (await this.health()).find((h) => h.peer === other.url)?.state ?? 'up'
  }
}

export type HaClusterOptions = Omit<ClusterOptions, 'peer' | 'commandTimeoutMs' | 'coverage'> & {
  peer?: Omit<PeerOptions, 'self' | 'peers' | 'onPeerStateChange'>
}

/** cluster.ts's Cluster (urls, ring, ownerOf, loads, teardown) with ha-member processes. */
export class HaCluster extends Cluster {
  declare readonly members: HaMember[]
  readonly #options: HaClusterOptions
  readonly #children = new Set<ChildProcess>()
  #spawned = 0

  constructor(options: HaClusterOptions) {
    super(options)
    this.#options = options
  }

  /** The members still running. */
  get alive(): HaMember[] {
    return this.members.filter((m) => m.alive)
  }

  /** The keys among `keys` that `member` owns on the ring of `urls`. */
  keysOf(member: HaMember, keys: string[], urls?: string[]): string[] {
    const ring = this.ring(urls)
    return keys.filter((k) => ring.owners(k, 1)[0] === member.url)
  }

  /** Sums a numeric stats field over the members still running. */
  async sumStat(group: string, field: NumericStat): Promise<number> {
    const all = await Promise.all(this.alive.map((m) => m.stats(group)))
    return all.reduce((sum, s) => sum + s[field], 0)
  }

  /** Starts `count` members that know each other and the members given in `peers`. */
  async start(count: number, peers: string[] = []): Promise<HaMember[]> {
    const started = await Promise.all(Array.from({ length: count }, () => this.#spawn()))
    const all = [...peers, ...started.map((m) => m.url)]
    const { peer, groups } = this.#options
    await Promise.all(started.map((m) => m.request('init', { peers: all, peer, groups })))
    return started
  }

  /** Waits until the owners' copies to replicas reached `count` (they are sent after the get that filled). */
  replicated(group: string, count: number): Promise<void> {
    return until(async () => (await this.sumStat(group, 'replicaWrites')) >= count, `${count} replica writes`)
  }

  async #spawn(): Promise<HaMember> {
    const name = `ha${this.#spawned++}`
    const child = fork(HA_MEMBER, [], { env: { ...process.env, MEMBER_NAME: name }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    this.#children.add(child)
    child.once('exit', () => this.#children.delete(child))
    const member = new HaMember(name, child, await reservedPort(child, name), COMMAND_TIMEOUT_MS)
    this.members.push(member)
    return member
  }

  /** @internal Kills every child at once, for process exit. */
  killAll(): void {
    for (const child of this.#children) child.kill('SIGKILL')
  }
}

/**
 * Sends the child's output to stderr, prefixed by `name`, then waits for the port it reserved (its
 * first message); with `limitMs`, a child silent that long is killed and the wait fails.
 */
export function reservedPort(child: ChildProcess, name: string, limitMs?: number): Promise<number> {
  // stdout must not reach tap's TAP stream.
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`))
  return new Promise<number>((resolve, reject) => {
    const timer =
      limitMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL')
            reject(new Error(`${name} reserved no port within ${limitMs} ms`))
          }, limitMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code}) before reserving a port`))
    })
    child.once('message', (msg: { type?: string; port?: number }) => {
      clearTimeout(timer)
      if (msg.type === 'reserved' && msg.port) resolve(msg.port)
      else reject(new Error(`${name}: first message ${JSON.stringify(msg)}`))
    })
  })
}

const clusters = new Set<HaCluster>()
// Whatever happens to the test process, its members die with it.
process.once('exit', () => {
  for (const c of clusters) c.killAll()
})

/** Starts `options.size` ha-member processes that know each other; all are killed at teardown. */
export async function startHaCluster(t: Teardown, options: HaClusterOptions): Promise<HaCluster> {
  const cluster = new HaCluster(options)
  clusters.add(cluster)
  t.teardown(() => cluster.teardown())
  await cluster.start(options.size)
  return cluster
}

/** Polls `check` every `everyMs` until it returns true; the bound only keeps a broken build from hanging. */
export async function until(check: () => Promise<boolean> | boolean, what: string, limitMs = 20_000, everyMs = 50): Promise<void> {
  const end = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`still waiting, after ${limitMs} ms, for: ${what}`)
    await sleep(everyMs)
  }
}

export function keyRange(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`)
}

/** The group every HA test uses. */
export const GROUP = 'ha'

/**
 * The HA tests' group: `replicas` copies, a slightly slow origin, and no hot cache, so that every
 * get of another member's key goes over the network and routing is what the test observes.
 */
/**
 * Peer options for tests that are not about how fast a hung member is detected: on a shared,
 * overloaded machine a healthy member can take over a second to answer, and must not look hung.
 */
export const PATIENT = { peerTimeoutMs: 5000 }

export function haGroups(replicas = 2, delayMs = 2): Record<string, GroupSpec> {
  return { [GROUP]: { options: { maxBytes: 16 << 20, hotCacheRatio: 0, replicas }, loader: { delayMs } } }
}
