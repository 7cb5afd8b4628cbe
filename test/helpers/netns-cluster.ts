// A peercache cluster with one process per host of a test Network (test/helpers/netns.ts): each
// member is test/fixtures/ha-member.mjs started with `ip netns exec` in its host's namespace and
// listening on the host's address, driven over IPC (which crosses `ip netns exec`: it execs node
// with the channel's file descriptor) through ha.ts's HaMember.
import { type ChildProcess, spawn } from 'node:child_process'
import type { PeerOptions } from '../../lib/index.js'
import { Ring } from '../../lib/ring.js'
import { type GroupSpec, memberEnv } from './cluster.js'
import { COMMAND_TIMEOUT_MS, HA_MEMBER, HaMember, reservedPort, until } from './ha.js'
import type { Host, Network } from './netns.js'

/** How long a member may take to start (to reserve its port), in ms: generous, for a loaded machine. */
const START_LIMIT_MS = 90_000

/** The port every member listens on: each host has an address of its own. */
export const MEMBER_PORT = 7001

export interface NetClusterOptions {
  groups: Record<string, GroupSpec>
  peer?: Omit<PeerOptions, 'self' | 'peers' | 'onPeerStateChange'>
}

/** Membership from DNS instead of a list: the server ('ip:port') and the name it answers for. */
export interface DnsMembership {
  server: string
  name: string
  /** Time between resolutions, in ms. Default 200. */
  intervalMs?: number
}

const children = new Set<ChildProcess>()
// Whatever ends the test process, its members die with it (before the namespaces are removed).
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

export class NetCluster {
  /** The member running on each host (by host index), if any. */
  readonly members = new Map<number, HaMember>()
  readonly network: Network
  readonly #options: NetClusterOptions
  #spawned = 0

  constructor(network: Network, options: NetClusterOptions) {
    this.network = network
    this.#options = options
  }

  /** A member's URL on `host`, running or not. */
  url(host: Host): string {
    return `http://${host.ip}:${MEMBER_PORT}`
  }

  member(host: Host): HaMember {
    const m = this.members.get(host.index)
    if (m === undefined) throw new Error(`no member on host ${host.index}`)
    return m
  }

  /** The members still running. */
  get alive(): HaMember[] {
    return [...this.members.values()].filter((m) => m.alive)
  }

  /** The ring of the members on `hosts`. */
  ring(hosts: Host[]): Ring {
    return new Ring(
      hosts.map((h) => this.url(h)),
      this.#options.peer?.vnodes,
    )
  }

  /**
   * Starts a member on each of `hosts` (replacing a dead one), all knowing `peers` (default: the
   * members on `hosts`), or taking their membership from `dns`.
   */
  async start(hosts: Host[], membership: { peers?: Host[]; dns?: DnsMembership } = {}): Promise<HaMember[]> {
    const peers = (membership.peers ?? hosts).map((h) => this.url(h))
    return Promise.all(
      hosts.map(async (host) => {
        const member = await this.#spawn(host)
        await member.request('init', { peers, peer: this.#options.peer, groups: this.#options.groups, dns: membership.dns })
        return member
      }),
    )
  }

  /** Waits until the replica copies the owners sent reached `count` in all (they go out after the get). */
  async replicated(group: string, count: number): Promise<void> {
    const sum = async () => {
      const stats = await Promise.all(this.alive.map((m) => m.stats(group)))
      return stats.reduce((n, s) => n + (s.replicaWrites ?? 0), 0)
    }
    await until(async () => (await sum()) >= count, `${count} replica writes`)
  }

  /** Kills every member (stopped ones too). */
  async teardown(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.kill('SIGKILL')))
  }

  async #spawn(host: Host): Promise<HaMember> {
    const name = `h${host.index}.${this.#spawned++}`
    const [command, args] = this.network.exec(host, [process.execPath, HA_MEMBER])
    const env = { ...memberEnv(false), MEMBER_NAME: name, MEMBER_HOST: host.ip, MEMBER_PORT: String(MEMBER_PORT) }
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    children.add(child)
    child.once('exit', () => children.delete(child))
    const member = new HaMember(name, child, await reservedPort(child, name, START_LIMIT_MS), COMMAND_TIMEOUT_MS, host.ip)
    this.members.set(host.index, member)
    return member
  }
}
