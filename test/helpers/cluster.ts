// A cluster of real OS processes (test/fixtures/member.mjs, which runs ../../dist: build first).
// Each member is a Peer on its own loopback port, driven over IPC: get, gets, load (a steady,
// bounded loop), set, remove, stats, loads (origin loads per key in that process), loader (change
// the origin's behaviour), setPeers, close; and signals: kill (-9), stop (SIGSTOP), cont (SIGCONT).
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { GroupOptions, GroupStats, PeerOptions } from '../../lib/index.js'
import { Ring } from '../../lib/ring.js'
import type { Teardown } from './net.js'

const MEMBER = fileURLToPath(new URL('../fixtures/member.mjs', import.meta.url))

/** How a member's origin behaves for a group. Every field can be changed later with `member.loader()`. */
export interface LoaderSpec {
  /** Time each load takes, in ms (aborted early when the load's ctx.signal aborts). Default 0. */
  delayMs?: number
  /** Keys whose load rejects with `${failMessage} (${key})`. Default none. */
  failKeys?: string[]
  /** Keys the origin does not have: their load returns undefined (an absent value, with absentTtlMs). Default none. */
  absentKeys?: string[]
  /** Default 'origin failed'. */
  failMessage?: string
  /** Size of each value in bytes (a JSON header, then padding). Default: the header alone. */
  valueBytes?: number
  /** Per-key time to live in ms, set by the loader through ctx.ttlMs. */
  ttlMs?: Record<string, number>
  /** Goes into every value as `v`, so a test can tell an old value from a reload. Default 'v1'. */
  version?: string
}

export interface GroupSpec {
  /** The group's options, but the loader (made from `loader`) and a codec given by name only. */
  options: Omit<GroupOptions, 'load' | 'codec'> & { codec?: 'bytes' | 'string' | 'json' }
  loader?: LoaderSpec
}

export interface ClusterOptions {
  size: number
  groups: Record<string, GroupSpec>
  /** Options for every member's Peer (not self and peers, which the cluster decides). */
  peer?: Omit<PeerOptions, 'self' | 'peers'>
  /** How long a command may go unanswered (e.g. by a stopped member) before it rejects, in ms. Default 20000. */
  commandTimeoutMs?: number
  /** The member script, a path (default test/fixtures/member.mjs): another fixture on the same IPC skeleton (ipc.mjs). */
  fixture?: string
  /** More arguments for the fixture's `init` command (besides peers, peer and groups). */
  init?: Record<string, unknown>
  /**
   * Let tap collect coverage in the member processes too. Off by default: it slows every member's
   * start and run, and the members run dist/, not the lib/ sources the coverage report is about.
   */
  coverage?: boolean
}

/** A value as a member's get returned it: the text (cut at 64 KiB) and its full size in bytes; `absent` for an absent value. */
export interface Value {
  value: string
  size: number
  ms: number
  absent?: true
}

export type Outcome = ({ ok: true } & Omit<Value, 'ms'>) | { ok: false; error: RemoteErrorInfo }

export interface RemoteErrorInfo {
  name: string
  code?: string
  message: string
  originMessage?: string
}

export interface LoadReport {
  gets: number
  failed: number
  errors: RemoteErrorInfo[]
  maxMs: number
}

/** An error a member's command rejected with, rebuilt in the test process. */
export class RemoteError extends Error {
  readonly code: string | undefined
  readonly originMessage: string | undefined
  constructor(info: RemoteErrorInfo, member: string) {
    super(`${info.message} (in ${member})`)
    this.name = info.name
    this.code = info.code
    this.originMessage = info.originMessage
  }
}

/** What a member's value says about itself: which version of the loader made it, in which member, for which key. */
export function valueHeader(text: string): { v: string; by: string; key: string } {
  const end = text.indexOf('\n')
  const header = JSON.parse(end === -1 ? text : text.slice(0, end)) as { v: string; by: string; key: string }
  return { v: header.v, by: header.by, key: header.key }
}

const running = new Set<ChildProcess>()
// Whatever happens to the test process, its members die with it.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export class Member {
  readonly name: string
  readonly port: number
  readonly url: string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #alive = true
  readonly #child: ChildProcess
  readonly #timeoutMs: number
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  #nextId = 0

  /** @internal Use startCluster or cluster.add. `host`: the address it listens on (a namespace's, in the partition tests). */
  constructor(name: string, child: ChildProcess, port: number, timeoutMs: number, host = '127.0.0.1') {
    this.name = name
    this.#child = child
    this.port = port
    this.url = `http://${host}:${port}`
    this.#timeoutMs = timeoutMs
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#alive = false
        running.delete(child)
        for (const p of this.#pending.values()) p.reject(new Error(`member ${name} exited (${signal ?? code})`))
        this.#pending.clear()
        resolve({ code, signal })
      })
    })
    child.on('message', (msg: { id?: number; ok?: boolean; result?: unknown; error?: RemoteErrorInfo }) => {
      const p = msg.id === undefined ? undefined : this.#pending.get(msg.id)
      if (p === undefined) return
      this.#pending.delete(msg.id!)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new RemoteError(msg.error!, name))
    })
  }

  get alive(): boolean {
    return this.#alive
  }

  get pid(): number {
    return this.#child.pid!
  }

  /** Sends a command; rejects with a RemoteError if it failed there, or after the timeout. */
  request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = this.#timeoutMs): Promise<T> {
    if (!this.#alive) return Promise.reject(new Error(`member ${this.name} is not running`))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`member ${this.name}: ${cmd} unanswered after ${timeoutMs} ms`))
      }, timeoutMs)
      const done =
        <A>(fn: (a: A) => void) =>
        (a: A) => {
          clearTimeout(timer)
          fn(a)
        }
      this.#pending.set(id, { resolve: done(resolve as (v: unknown) => void), reject: done(reject) })
      this.#child.send({ id, cmd, args })
    })
  }

  /** One get; rejects with the member's error (a RemoteError named like the original). */
  get(group: string, key: string, options: { abortAfterMs?: number } = {}): Promise<Value> {
    return this.request('get', { group, key, ...options })
  }

  /** All `keys` at once (repeats allowed); one outcome per key, in order. */
  gets(group: string, keys: string[]): Promise<Outcome[]> {
    return this.request('gets', { group, keys })
  }

  /** A steady, bounded load of gets over `keys`; see member.mjs `load`. */
  load(group: string, keys: string[], options: { durationMs?: number; concurrency?: number; maxGets?: number } = {}): Promise<LoadReport> {
    return this.request('load', { group, keys, ...options }, Math.max(this.#timeoutMs, (options.durationMs ?? 1000) + this.#timeoutMs))
  }

  /** `value` undefined: an absent value (the group needs absentTtlMs). */
  set(group: string, key: string, value: string | undefined, options: { ttlMs?: number } = {}): Promise<unknown> {
    return this.request('set', { group, key, value, ...options })
  }

  remove(group: string, key: string): Promise<unknown> {
    return this.request('remove', { group, key })
  }

  /** group.clear() in this member: every member drops the group's entries. */
  clear(group: string): Promise<{ acknowledged: string[]; unreachable: string[] }> {
    return this.request('clear', { group })
  }

  stats<S = GroupStats>(group: string): Promise<S> {
    return this.request('stats', { group })
  }

  /** Origin loads made in this member's process for `group`. */
  loads(group: string): Promise<{ byKey: Record<string, number>; total: number; aborted: number }> {
    return this.request('loads', { group })
  }

  /** Changes this member's origin for `group` from now on. */
  loader(group: string, spec: LoaderSpec): Promise<LoaderSpec> {
    return this.request('loader', { group, ...spec })
  }

  setPeers(peers: string[]): Promise<string[]> {
    return this.request('setPeers', { peers })
  }

  /** peer.close(), then the process exits; resolves when it has. */
  async close(): Promise<void> {
    await this.request('close')
    await this.exited
  }

  /** Sends `signal` (default SIGKILL); for a signal that ends the process, resolves once it has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.#alive) return
    this.#child.kill(signal)
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') await this.exited
  }

  /** Freezes the process (it keeps its sockets open but answers nothing): a hung peer. */
  stop(): void {
    this.#child.kill('SIGSTOP')
  }

  cont(): void {
    this.#child.kill('SIGCONT')
  }
}

export class Cluster {
  readonly members: Member[] = []
  readonly #options: ClusterOptions
  #spawned = 0

  /** @internal Use startCluster. */
  constructor(options: ClusterOptions) {
    this.#options = options
  }

  /** The URLs of every member started, alive or not, in start order. */
  get urls(): string[] {
    return this.members.map((m) => m.url)
  }

  /** The ring the members build from `urls` (default: every member's URL). */
  ring(urls: string[] = this.urls): Ring {
    return new Ring(urls, this.#options.peer?.vnodes)
  }

  /** The member that owns `key` on the ring of `urls`. */
  ownerOf(key: string, urls?: string[]): Member {
    const owner = this.ring(urls).owners(key, 1)[0]
    return this.members.find((m) => m.url === owner)!
  }

  /**
   * Starts one more member whose peer list is every member's URL and its own (`peers` to choose
   * another). The others' lists do not change: call setPeers on them. `port` restarts a member
   * at a known port.
   */
  async add(options: { peers?: string[]; port?: number } = {}): Promise<Member> {
    const member = await this.#spawn(options.port)
    const peers = options.peers ?? this.urls
    await member.request('init', this.#initArgs(peers))
    return member
  }

  /** Origin loads per key summed over the members still running (a killed member's loads are gone). */
  async loads(group: string): Promise<{ byKey: Map<string, number>; total: number }> {
    const byKey = new Map<string, number>()
    let total = 0
    for (const m of this.members.filter((m) => m.alive)) {
      const loads = await m.loads(group)
      total += loads.total
      for (const [key, n] of Object.entries(loads.byKey)) byKey.set(key, (byKey.get(key) ?? 0) + n)
    }
    return { byKey, total }
  }

  /** Kills every member still running (stopped ones too). */
  async teardown(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill('SIGKILL')))
  }

  /** @internal */
  async spawnAll(): Promise<void> {
    const members = await Promise.all(Array.from({ length: this.#options.size }, () => this.#spawn()))
    const peers = members.map((m) => m.url)
    await Promise.all(members.map((m) => m.request('init', this.#initArgs(peers))))
  }

  #initArgs(peers: string[]): Record<string, unknown> {
    return { ...this.#options.init, peers, peer: this.#options.peer, groups: this.#options.groups }
  }

  async #spawn(port?: number): Promise<Member> {
    const name = `m${this.#spawned++}`
    const child = fork(this.#options.fixture ?? MEMBER, [], {
      env: { ...memberEnv(this.#options.coverage ?? false), MEMBER_NAME: name, MEMBER_PORT: port === undefined ? '' : String(port) },
      // stdout must not reach tap's TAP stream; both go to stderr, prefixed.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    running.add(child)
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`))
    const reserved = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`member ${name} exited (${code}) before reserving a port`)))
      child.once('message', (msg: { type?: string; port?: number }) => {
        if (msg.type === 'reserved' && msg.port) resolve(msg.port)
        else reject(new Error(`member ${name}: unexpected first message ${JSON.stringify(msg)}`))
      })
    })
    const member = new Member(name, child, reserved, this.#options.commandTimeoutMs ?? 20_000)
    this.members.push(member)
    return member
  }
}

/** The test's environment, without tap's coverage hook unless `coverage`. */
export function memberEnv(coverage: boolean): NodeJS.ProcessEnv {
  if (coverage) return process.env
  const env = { ...process.env }
  const options = (env.NODE_OPTIONS ?? '').split(/\s+/).filter((o) => o !== '' && !o.includes('@tapjs/processinfo'))
  if (options.length > 0) env.NODE_OPTIONS = options.join(' ')
  else delete env.NODE_OPTIONS
  for (const k of Object.keys(env)) if (k.startsWith('_TAPJS_PROCESSINFO')) delete env[k]
  return env
}

/**
 * Starts a cluster of `options.size` member processes that know each other; killed at teardown.
 * Call it inside a `t.test`, or at the top level of a file and then queue subtests at once: tap's
 * root test ends (and runs this teardown) as soon as it has nothing queued, even mid-await.
 */
export async function startCluster(t: Teardown, options: ClusterOptions): Promise<Cluster> {
  const cluster = new Cluster(options)
  t.teardown(() => cluster.teardown())
  await cluster.spawnAll()
  return cluster
}
