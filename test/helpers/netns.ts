// Hosts of their own for fault-injection tests: a Linux bridge and N network namespaces, each joined
// to it by a veth pair and holding one address of a private /24 (10.213.X.0/24, X free on this
// machine). Faults come from the kernel: a host's link taken down (its packets vanish, nothing is
// refused), and a one-way partition made with nftables inside the host's namespace.
//
// Everything created is named `pcn<pid>...` (the test process's pid), so that a later run removes
// what a killed run left behind (its pid is gone) without touching a run going on beside it.
// Cleanup runs at teardown, on process exit, and on SIGINT/SIGTERM. Needs root and iproute2.
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process'
import { ensureDebianCommand } from './debian.js'
import type { Teardown } from './net.js'

const PREFIX = 'pcn'
/** The second octet of every test subnet: 10.213.X.0/24. */
const SUBNET_BASE = '10.213'
/** The bridge's own address in its subnet (the test process reaches the hosts through it). */
const BRIDGE_HOST = 254

/** Runs `ip` (or another command) and throws with its stderr when it fails. */
function run(command: string, args: string[], input?: string): string {
  const result: SpawnSyncReturns<string> = spawnSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] })
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${(result.stderr || result.error?.message || '').trim()}`)
  return result.stdout
}

/** Like run, but a failure is ignored (for removal of what may already be gone). */
function tryRun(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes namespaces and links named by a run whose process is gone. */
function removeStale(): void {
  const owner = (name: string) => Number(new RegExp(`^${PREFIX}(\\d+)`).exec(name)?.[1] ?? Number.NaN)
  const stale = (name: string) => {
    const pid = owner(name)
    return Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid)
  }
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const ns = line.split(' ')[0] ?? ''
    if (stale(ns)) tryRun('ip', ['netns', 'delete', ns])
  }
  for (const link of JSON.parse(run('ip', ['-j', 'link', 'show'])) as { ifname: string }[]) {
    if (stale(link.ifname)) tryRun('ip', ['link', 'delete', link.ifname])
  }
}

/** A free third octet for this run's subnet: one no address on this machine is in. */
function freeSubnet(): string {
  const used = run('ip', ['-4', '-o', 'addr', 'show'])
  for (let i = 0; i < 250; i++) {
    const x = (process.pid + i) % 250
    if (!used.includes(` ${SUBNET_BASE}.${x}.`)) return `${SUBNET_BASE}.${x}`
  }
  throw new Error(`no free ${SUBNET_BASE}.X.0/24 subnet`)
}

/**
 * Whether this machine lets the test make namespaces (root, iproute2 installed or installable, a
 * namespace that can be created). Returns `{ skip }` with a one-line reason when it does not.
 */
export function netnsSupport(): { ok: true } | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'network namespaces need Linux' }
  if (process.getuid?.() !== 0) return { skip: 'network namespaces need root: run `sudo npx tap test/partition.test.ts`' }
  const ip = ensureDebianCommand('ip', 'iproute2')
  if ('skip' in ip) return ip
  const probe = `${PREFIX}${process.pid}probe`
  try {
    removeStale()
    run('ip', ['netns', 'add', probe])
    return { ok: true }
  } catch (err) {
    return { skip: `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}` }
  } finally {
    tryRun('ip', ['netns', 'delete', probe])
  }
}

/** One host: a namespace with its end of a veth pair and its address. */
export interface Host {
  /** 0-based. */
  index: number
  /** The namespace's name, for `ip netns exec`. */
  ns: string
  /** Its address on the bridge, e.g. 10.213.7.1. */
  ip: string
  /** The host-side end of its veth pair (a port of the bridge). */
  veth: string
}

/**
 * A detached shell that outlives this process and, once it is gone (even by SIGKILL, as tap does
 * to a test file past its timeout), removes every namespace and link this process named.
 */
function watchdog(): void {
  const mine = `^${PREFIX}${process.pid}[a-z]`
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `for ns in $(ip netns list | cut -d' ' -f1 | grep '${mine}'); do ip netns delete "$ns"; done`,
    `for link in $(ip -o link show | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | grep '${mine}'); do ip link delete "$link"; done`,
  ].join('\n')
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref()
}

const networks = new Set<Network>()
let exitHooked = false

function hookExit(): void {
  if (exitHooked) return
  exitHooked = true
  watchdog()
  // Whatever ends the test process, the namespaces go with it. A signal's default action would skip
  // 'exit': remove, then die of the same signal.
  process.once('exit', () => {
    for (const n of networks) n.destroy()
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const n of networks) n.destroy()
      process.kill(process.pid, signal)
    })
  }
}

export class Network {
  readonly hosts: Host[] = []
  /** The subnet's first three octets, e.g. '10.213.7'. */
  readonly subnet: string
  readonly bridge: string
  /** The bridge's address: the test process (and a DNS server it runs) is reachable there from every host. */
  readonly bridgeIp: string
  #destroyed = false
  #nft: string | undefined

  /** @internal Use createNetwork. */
  constructor(size: number) {
    this.subnet = freeSubnet()
    this.bridge = `${PREFIX}${process.pid}br`
    this.bridgeIp = `${this.subnet}.${BRIDGE_HOST}`
    networks.add(this)
    hookExit()
    try {
      run('ip', ['link', 'add', this.bridge, 'type', 'bridge'])
      run('ip', ['addr', 'add', `${this.bridgeIp}/24`, 'dev', this.bridge])
      run('ip', ['link', 'set', this.bridge, 'up'])
      for (let i = 0; i < size; i++) this.#addHost()
    } catch (err) {
      this.destroy() // a half-made network goes before the error does
      throw err
    }
  }

  #addHost(): Host {
    const index = this.hosts.length
    const host: Host = {
      index,
      ns: `${PREFIX}${process.pid}h${index}`,
      ip: `${this.subnet}.${index + 1}`,
      veth: `${PREFIX}${process.pid}v${index}`,
    }
    const inside = `${PREFIX}${process.pid}i${index}`
    this.hosts.push(host)
    run('ip', ['netns', 'add', host.ns])
    run('ip', ['link', 'add', host.veth, 'type', 'veth', 'peer', 'name', inside])
    run('ip', ['link', 'set', inside, 'netns', host.ns])
    run('ip', ['link', 'set', host.veth, 'master', this.bridge])
    run('ip', ['link', 'set', host.veth, 'up'])
    run('ip', ['-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', inside])
    run('ip', ['-n', host.ns, 'link', 'set', inside, 'up'])
    run('ip', ['-n', host.ns, 'link', 'set', 'lo', 'up'])
    return host
  }

  /** The command line that runs `argv` inside `host`'s namespace. */
  exec(host: Host, argv: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', host.ns, ...argv]]
  }

  /** Cuts `host` off: its bridge port goes down, every packet to or from it is dropped. */
  down(host: Host): void {
    run('ip', ['link', 'set', host.veth, 'down'])
  }

  /** Reconnects `host` (undoes down). */
  up(host: Host): void {
    run('ip', ['link', 'set', host.veth, 'up'])
  }

  /**
   * A one-way partition: packets of connections `host` opens to the other hosts are dropped, while
   * connections the others open to it still work both ways (its answers are replies). So `host`
   * hears its peers and answers them, but cannot ask them anything. Needs nftables (installed with
   * apt-get when missing); throws with the reason when it cannot be had.
   */
  cutOutgoing(host: Host): void {
    const table = [
      `table inet ${PREFIX}oneway {`,
      '  chain out {',
      '    type filter hook output priority 0; policy accept;',
      // Not the bridge's address: the test process (a DNS server) stays reachable.
      `    ip daddr ${this.subnet}.0/24 ip daddr != ${this.bridgeIp} ct direction original drop`,
      '  }',
      '}',
    ].join('\n')
    run('ip', ['netns', 'exec', host.ns, this.#nftPath(), '-f', '-'], table)
  }

  /** Undoes cutOutgoing (the table lives in the host's namespace and would go with it anyway). */
  restoreOutgoing(host: Host): void {
    if (this.#nft === undefined) return // never cut
    tryRun('ip', ['netns', 'exec', host.ns, this.#nftPath(), 'delete', 'table', 'inet', `${PREFIX}oneway`])
  }

  /** Whether nftables can be had here; the one-line reason when it cannot. */
  static nftSupport(): { ok: true } | { skip: string } {
    const nft = ensureDebianCommand('nft', 'nftables')
    return 'skip' in nft ? nft : { ok: true }
  }

  #nftPath(): string {
    if (this.#nft) return this.#nft
    const nft = ensureDebianCommand('nft', 'nftables')
    if ('skip' in nft) throw new Error(nft.skip)
    this.#nft = nft.path
    return nft.path
  }

  /** Removes every namespace and link this network made (their nft tables go with them). Idempotent. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    networks.delete(this)
    for (const host of this.hosts) {
      tryRun('ip', ['netns', 'delete', host.ns])
      tryRun('ip', ['link', 'delete', host.veth])
    }
    tryRun('ip', ['link', 'delete', this.bridge])
  }
}

/** A bridge and `size` hosts on it, removed at teardown (and on exit, whatever happens). */
export function createNetwork(t: Teardown, size: number): Network {
  removeStale()
  const network = new Network(size)
  t.teardown(() => network.destroy())
  return network
}

/** What this process's runs left behind, as `ip` shows it (for checks that cleanup worked). */
export function leftovers(): string[] {
  const mine = (name: string) => name.startsWith(`${PREFIX}${process.pid}`)
  const ns = run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(mine)
  const links = (JSON.parse(run('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).filter(mine)
  return [...ns, ...links]
}
