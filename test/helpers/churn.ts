// Membership churn through DNS, under load (test/partition.test.ts): three hosts find each other
// through a DNS server on the bridge; during the load a fourth host's record is added and its
// member started, then the first host's record is removed and its member closed. Reported like the
// partition scenarios (scenario.ts), the leaving host in the cut-off column: failed gets on the
// staying and joining hosts, failed gets of the leaver while it served, the slowest get, and origin
// loads, after warm-up, of the keys the leaver owned.
import { setTimeout as sleep } from 'node:timers/promises'
import { DNS_NAME, startDnsServer } from './dns.js'
import { GROUP, type HaMember, keyRange, until, type WorkersReport } from './ha.js'
import type { Teardown } from './net.js'
import type { NetCluster } from './netns-cluster.js'
import type { Network } from './netns.js'
import { KEY_COUNT, LEAD_MS, loadsByMember, merge, type ScenarioResult, startCluster, summary, TAIL_MS, WORKERS, warm } from './scenario.js'

/** How long the load runs between the join and the leave, in ms. */
const BETWEEN_MS = 2000

/** Waits until each of `members` has `count` peers (discovery at work), for at most 20 s. */
function membersSee(members: HaMember[], count: number): Promise<void> {
  const seen = async () => (await Promise.all(members.map((m) => m.request<string[]>('peers')))).every((p) => p.length === count)
  return until(seen, `${members.map((m) => m.name).join(', ')} see ${count} peers`, 20_000, 50)
}

export async function runChurn(t: Teardown, network: Network, name: string): Promise<ScenarioResult> {
  const [leaver, a, b, joiner] = network.hosts
  if (leaver === undefined || a === undefined || b === undefined || joiner === undefined) throw new Error('churn needs 4 hosts')
  const dns = await startDnsServer([leaver.ip, a.ip, b.ip], { host: network.bridgeIp })
  t.teardown(dns.close)
  const membership = { server: dns.server, name: DNS_NAME, intervalMs: 200 }
  const cluster: NetCluster = await startCluster(t, network, [leaver, a, b], membership)
  const first = [leaver, a, b].map((h) => cluster.member(h))
  await membersSee(first, 3)
  const keys = keyRange('churn-', KEY_COUNT)
  const replicated = await warm(cluster, cluster.member(a), keys)
  const leaverKeys = keys.filter((k) => cluster.ring([leaver, a, b]).owners(k, 1)[0] === cluster.url(leaver))
  const before = await loadsByMember(cluster)

  const started = Date.now()
  const load = (m: HaMember, durationMs: number, seed: number) =>
    m.workers(GROUP, keys, { ...WORKERS, durationMs, seed }).catch(() => undefined as WorkersReport | undefined)
  const stayers = [a, b].map((h, i) => load(cluster.member(h), LEAD_MS + BETWEEN_MS + TAIL_MS + 2000, i + 1))
  // The leaver's load ends when it is about to leave: its gets after close() would fail by design.
  const leaving = load(cluster.member(leaver), LEAD_MS + BETWEEN_MS, 3)
  await sleep(LEAD_MS)

  dns.state.records = [leaver.ip, a.ip, b.ip, joiner.ip]
  const [joined] = await cluster.start([joiner], { dns: membership })
  await membersSee([...first, joined!], 4)
  const joining = load(joined!, Math.max(0, started + LEAD_MS + BETWEEN_MS + TAIL_MS - Date.now()), 4)
  await sleep(Math.max(0, started + LEAD_MS + BETWEEN_MS - Date.now()))

  dns.state.records = [a.ip, b.ip, joiner.ip]
  const staying = [a, b, joiner].map((h) => cluster.member(h))
  await membersSee(staying, 3)
  const leaverReport = await leaving
  await cluster.member(leaver).close()

  const side = merge([...(await Promise.all(stayers)), await joining])
  return {
    ...(await summary(cluster, name, side, merge([leaverReport]), before, leaverKeys)),
    replicated,
    unreachable: 0,
    victimMarked: 0,
  }
}
