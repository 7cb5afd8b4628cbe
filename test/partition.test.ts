// Partitions over real networks: every member is a process in a network namespace of its own, on a
// bridge, with 2 replicas, and under load from every host while the kernel makes the fault (a link
// down, a one-way nftables rule, SIGSTOP, SIGKILL). See test/helpers/scenario.ts for what is
// measured. Run it as root (CI does):
//
//   sudo npx tap test/partition.test.ts        (builds nothing: run `npm run build` first)
//
// Without root or namespaces the whole file skips with one line. It asserts what the library
// promises (a get never fails because a peer did: 0 failed gets on the majority side; no stale read
// 1 s after the heal: hinted hand-off) and prints the rest as a table, also written to
// test/bench/results/partitions.md.
import { mkdirSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { runChurn } from './helpers/churn.js'
import { createNetwork, leftovers, Network, netnsSupport } from './helpers/netns.js'
import type { NetCluster } from './helpers/netns-cluster.js'
import { keyRange } from './helpers/ha.js'
import {
  KEY_COUNT,
  PEER_TIMEOUT_MS,
  runScenario,
  WORKERS,
  warm,
  type Scenario,
  type ScenarioResult,
  startCluster,
  table,
} from './helpers/scenario.js'
import type { TapTest } from './helpers/tap.js'

const HOSTS = 4
/** How long the first scenario cuts a host off, in ms: the 10 s, long past failure detection. */
const PARTITION_MS = 10_000
/** How long the other cuts, pauses and one-way partitions last, in ms. */
const FAULT_MS = 3000
/** The flapping link: how long it flaps, and how long each down and each up lasts, in ms. */
const FLAPPING_MS = 10_000
const FLAP_MS = 1000
const RESULTS = new URL('./bench/results/partitions.md', import.meta.url)

// About 2 minutes on a quiet machine; 4-5 with a load average of 25 on 2 cores: more than tap's default.
t.setTimeout(420_000)

const support = netnsSupport()
if ('skip' in support) t.plan(0, `skipped: ${support.skip}`)
else main()

function main() {
  const network = createNetwork(t, HOSTS)
  const results: ScenarioResult[] = []
  t.teardown(() => report(results))
  let cluster: NetCluster | undefined
  t.before(async () => {
    cluster = await startCluster(t, network, network.hosts)
    // New processes are slow at first (JIT, connections), and replica copies time out: warm them up.
    await warm(cluster, cluster.member(network.hosts[0]!), keyRange('warm-up-', 200))
  })

  /** Runs `s` with host 3 as its victim, checks what holds today, and keeps its row. */
  const scenario = (s: Scenario, options: { skip?: string | false } = {}) =>
    t.test(s.name, options, async (t: TapTest) => {
      const victim = network.hosts[HOSTS - 1]!
      // A scenario that failed half-way leaves no fault behind for the next one.
      t.teardown(() => {
        network.up(victim)
        network.restoreOutgoing(victim)
        if (cluster?.members.get(victim.index)?.alive) cluster.member(victim).cont()
      })
      const r = await runScenario(cluster!, victim, s)
      results.push(r)
      t.comment(JSON.stringify(r))
      t.ok(r.gets.majority > 0 && r.gets.victim > 0, 'every host made gets')
      t.equal(r.failed.majority, 0, 'no get failed on the majority side', { errors: r.errors })
      t.ok(r.stale !== undefined && r.stale.victimChecked + r.stale.majorityChecked > 0, 'stale reads were checked')
      t.equal((r.stale?.victim ?? 0) + (r.stale?.majority ?? 0), 0, 'no stale read 1 s after the heal (hinted hand-off)', {
        stale: r.stale,
      })
      return r
    })

  scenario({
    name: `partition one host for ${PARTITION_MS / 1000} s`,
    faultMs: PARTITION_MS,
    cut: ({ network, victim }) => network.down(victim),
    heal: ({ network, victim }) => network.up(victim),
  })

  scenario({
    name: 'partition the owner of the hottest keys',
    faultMs: FAULT_MS,
    hotVictim: true,
    cut: ({ network, victim }) => network.down(victim),
    heal: ({ network, victim }) => network.up(victim),
  })

  scenario({
    name: 'pause (SIGSTOP) and resume',
    faultMs: FAULT_MS,
    cut: ({ cluster, victim }) => cluster.member(victim).stop(),
    heal: ({ cluster, victim }) => cluster.member(victim).cont(),
  })

  const nft = Network.nftSupport()
  scenario(
    {
      name: 'one-way partition: the cut-off host cannot ask, but is asked',
      faultMs: FAULT_MS,
      cut: ({ network, victim }) => network.cutOutgoing(victim),
      heal: ({ network, victim }) => network.restoreOutgoing(victim),
    },
    { skip: 'skip' in nft && nft.skip },
  )

  let flapping: NodeJS.Timeout | undefined
  t.teardown(() => clearInterval(flapping))
  scenario({
    name: `a flapping link: down and up every ${FLAP_MS / 1000} s for ${FLAPPING_MS / 1000} s`,
    faultMs: FLAPPING_MS,
    cut: ({ network, victim }) => {
      network.down(victim)
      let down = true
      const end = Date.now() + FLAPPING_MS // bounded by itself too, should the heal never come
      flapping = setInterval(() => {
        down = !down && Date.now() < end
        if (Date.now() >= end) clearInterval(flapping)
        if (down) network.down(victim)
        else network.up(victim)
      }, FLAP_MS)
    },
    heal: ({ network, victim }) => {
      clearInterval(flapping)
      network.up(victim)
    },
  })

  scenario({
    name: 'kill (SIGKILL) and restart',
    faultMs: FAULT_MS,
    cut: ({ cluster, victim }) => cluster.member(victim).kill('SIGKILL'),
    heal: async ({ cluster, victim, hosts }) => {
      await cluster.start([victim], { peers: hosts })
    },
  })

  t.test('a host joins and one leaves through DNS, during load', async (t) => {
    await cluster?.teardown() // the churn has a cluster of its own, on the same hosts
    const r = await runChurn(t, network, 'a host joins and one leaves through DNS')
    results.push(r)
    t.comment(JSON.stringify(r))
    t.ok(r.gets.majority > 0 && r.gets.victim > 0, 'every host made gets')
    t.equal(r.failed.majority, 0, 'no get failed on the staying and joining hosts', { errors: r.errors })
    t.equal(r.failed.victim, 0, 'nor on the leaving host while it served', { errors: r.errors })
  })

  t.test('nothing is left behind', async (t) => {
    network.destroy()
    await sleep(0)
    t.same(leftovers(), [], 'no namespace, veth or bridge of this run remains')
  })
}

function report(results: ScenarioResult[]) {
  const note = [
    `${HOSTS} hosts (network namespaces on a bridge), replicas: 2, peerTimeoutMs ${PEER_TIMEOUT_MS}; load: ${WORKERS.concurrency} loops per host`,
    `over ${KEY_COUNT} keys, ${WORKERS.pauseMs} ms pause between gets; faults last ${FAULT_MS / 1000} s (the flapping link ${FLAPPING_MS / 1000} s).`,
    'Origin loads: reloads after warm-up of the keys the cut-off host owns (but those set or removed), in % of those keys;',
    'for the DNS churn, the leaving host plays the cut-off one. Stale reads: gets, from every host, of the keys set or',
    'removed from the majority side during the fault that returned the replaced value 1 s after the heal.',
  ].join(' ')
  const text = table(results, note)
  t.comment(`\n${text}`)
  mkdirSync(new URL('.', RESULTS), { recursive: true })
  writeFileSync(RESULTS, text)
}
