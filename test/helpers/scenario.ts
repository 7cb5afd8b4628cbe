// The partition scenarios' runner (test/partition.test.ts): one cluster with a member per host of a
// test Network, shared by the scenarios (starting processes on a busy machine takes seconds); each
// scenario has keys of its own, warmed and replicated first, then a steady load of gets from every host while a fault hits one
// host (the "victim"), and writes from the majority side of keys the victim owns while it is cut
// off. It measures, and reports whatever the figures are:
// - failed gets and the slowest get, on the majority side and on the victim;
// - origin loads of the victim's keys (those it owns on the ring) after warm-up, in % of those keys;
// - stale reads 1 s after the heal: gets, from every member, of the keys set or removed during the
//   fault that still return the replaced value.
import { setTimeout as sleep } from 'node:timers/promises'
import type { HaMember, WorkersReport } from './ha.js'
import { GROUP, haGroups, keyRange, until } from './ha.js'
import { type NetCluster, NetCluster as Cluster, type DnsMembership } from './netns-cluster.js'
import type { Host, Network } from './netns.js'
import type { Teardown } from './net.js'

/** Keys per scenario; every host gets them all. */
export const KEY_COUNT = 200
/** Peer timeout of every member, in ms: the partition tests' bound on how long a get waits for a peer. */
export const PEER_TIMEOUT_MS = 1000
/** Load before the fault, in ms. */
export const LEAD_MS = 1000
/** Load after the heal, in ms (the stale reads are checked 1 s into it). */
export const TAIL_MS = 2000
/** When the stale reads are checked, after the heal, in ms. */
const STALE_CHECK_MS = 1000
/** Keys of the victim set, and removed, from the majority side during the fault (each). */
const CHANGED = 5
/** The load on each host: bounded in time (above) and count. */
export const WORKERS = { concurrency: 4, pauseMs: 2, maxGets: 50_000, slowMs: 60_000 }

export interface ScenarioContext {
  network: Network
  cluster: NetCluster
  victim: Host
  /** Every host of the scenario, the victim too. */
  hosts: Host[]
  /** How long the fault lasts, in ms. */
  faultMs: number
}

export interface Scenario {
  name: string
  /** How long the fault lasts before the heal, in ms. */
  faultMs: number
  /** The victim owns the hot keys: half of all gets go to 10 of its keys. Default false. */
  hotVictim?: boolean
  /** Makes the fault (link down, signal...). */
  cut(ctx: ScenarioContext): Promise<void> | void
  /** Ends it. A new member started on the victim's host takes the victim's place from then on. */
  heal(ctx: ScenarioContext): Promise<void> | void
}

/** One row of the table. Figures that do not apply are undefined. */
export interface ScenarioResult {
  name: string
  gets: { majority: number; victim: number }
  failed: { majority: number; victim: number }
  slowestMs: { majority: number; victim: number }
  /** Origin loads of the victim's unchanged keys after warm-up, in % of those keys. */
  victimKeyLoadsPct: number
  /** Gets that returned a replaced value 1 s after the heal, of how many, on each side (none checked: undefined). */
  stale?: { victim: number; victimChecked: number; majority: number; majorityChecked: number }
  /** The first few stale reads: who read which key (set or removed during the fault), and what it got. */
  staleReads?: string[]
  /** Replica copies made at warm-up, of one per key. */
  replicated: number
  /** Peers each set/remove during the fault named as unreachable (summed). */
  unreachable: number
  /** The first few errors of failed gets. */
  errors: string[]
  /** Health changes the majority saw of the victim. */
  victimMarked: number
}

const emptyReport = (): WorkersReport => ({ gets: 0, failed: 0, errors: [], slow: [], maxMs: 0, startedAt: 0, endedAt: 0 })

/** Sums reports (a killed member's load rejects: it counts as nothing). */
export function merge(reports: (WorkersReport | undefined)[]): WorkersReport {
  const all = emptyReport()
  for (const r of reports) {
    if (r === undefined) continue
    all.gets += r.gets
    all.failed += r.failed
    all.maxMs = Math.max(all.maxMs, r.maxMs)
    all.errors.push(...r.errors)
  }
  return all
}

/** Origin loads per key made by the members running now. */
export async function loadsByMember(cluster: NetCluster): Promise<Map<HaMember, Record<string, number>>> {
  const loads = new Map<HaMember, Record<string, number>>()
  for (const m of cluster.alive) loads.set(m, (await m.loads(GROUP)).byKey)
  return loads
}

/** Starts a cluster on `hosts` (membership from `dns` if given), killed at teardown. */
export async function startCluster(t: Teardown, network: Network, hosts: Host[], dns?: DnsMembership): Promise<NetCluster> {
  const cluster = new Cluster(network, { groups: haGroups(2), peer: { peerTimeoutMs: PEER_TIMEOUT_MS } })
  t.teardown(() => cluster.teardown())
  await cluster.start(hosts, dns ? { dns } : {})
  return cluster
}

/**
 * Gets every key once from `from` (each is loaded once, by its owner) and waits until the owners'
 * copies to their replicas arrived, or 20 s passed: a copy that failed twice (a peer too slow on a
 * busy machine) is not sent again. Resolves with how many copies arrived.
 */
export async function warm(cluster: NetCluster, from: HaMember, keys: string[]): Promise<number> {
  const copies = async () => (await Promise.all(cluster.alive.map((m) => m.stats(GROUP)))).reduce((n, st) => n + (st.replicaWrites ?? 0), 0)
  const start = await copies()
  await Promise.all(cluster.alive.map((m) => m.request('origin', { group: GROUP, version: 1 })))
  const fill = await from.fill(GROUP, keys)
  if (fill.failed > 0) throw new Error(`warm-up: ${fill.failed} gets failed: ${JSON.stringify(fill.errors)}`)
  await until(async () => (await copies()) - start >= keys.length, `${keys.length} replica copies`).catch(() => {})
  return (await copies()) - start
}

/** Waits (at most 20 s) until no member sees another as suspect or down, so a scenario starts from a healthy cluster. */
export function healthy(cluster: NetCluster): Promise<void> {
  const allUp = async () => (await Promise.all(cluster.alive.map((m) => m.health()))).flat().every((h) => h.state === 'up')
  return until(allUp, 'every member sees every other up', 20_000, 100)
}

let scenarios = 0

export async function runScenario(cluster: NetCluster, victim: Host, s: Scenario): Promise<ScenarioResult> {
  const { network } = cluster
  const hosts = network.hosts
  const KEYS = keyRange(`s${scenarios++}-`, KEY_COUNT)
  await healthy(cluster)
  const startedAt = Date.now()
  const replicated = await warm(cluster, cluster.member(hosts[0]!), KEYS)
  const ctx: ScenarioContext = { network, cluster, victim, hosts, faultMs: s.faultMs }
  const victimKeys = KEYS.filter((k) => cluster.ring(hosts).owners(k, 1)[0] === cluster.url(victim))
  const setKeys = victimKeys.slice(0, CHANGED)
  const removedKeys = victimKeys.slice(CHANGED, 2 * CHANGED)
  const steady = victimKeys.slice(2 * CHANGED)
  // Hot keys: 10 of the victim's, each listed as often as 10 other keys together.
  const hot = s.hotVictim ? steady.slice(0, 10).flatMap((k) => Array<string>(KEYS.length / 10).fill(k)) : []
  const workload = [...KEYS, ...hot]
  const majority = hosts.filter((h) => h !== victim).map((h) => cluster.member(h))
  const writer = majority[0]!
  const before = await loadsByMember(cluster)
  const durationMs = LEAD_MS + s.faultMs + TAIL_MS
  const original = cluster.member(victim)
  const loads = [...majority, original].map((m, i) =>
    m.workers(GROUP, workload, { ...WORKERS, durationMs, seed: i + 1 }).catch(() => undefined),
  )

  await sleep(LEAD_MS)
  // The origin changes now: whatever is loaded from here on is version 2 (the removes below say so).
  await Promise.all([...majority, original].map((m) => m.request('origin', { group: GROUP, version: 2 })))
  const cutAt = Date.now()
  await s.cut(ctx)
  await sleep(200)
  const writes = await Promise.all([
    ...setKeys.map((k) => writer.request<{ unreachable: string[] }>('set', { group: GROUP, key: k, value: `set:${k}` })),
    ...removedKeys.map((k) => writer.request<{ unreachable: string[] }>('remove', { group: GROUP, key: k })),
  ])
  await sleep(Math.max(0, cutAt + s.faultMs - Date.now()))
  await s.heal(ctx)

  const replacement = cluster.member(victim) === original ? undefined : cluster.member(victim)
  // A restarted victim is a new process: its origin is the one of now.
  await replacement?.request('origin', { group: GROUP, version: 2 })
  const lateLoad = replacement?.workers(GROUP, workload, { ...WORKERS, durationMs: TAIL_MS, seed: 99 }).catch(() => undefined)
  await sleep(STALE_CHECK_MS)
  const stale = { victim: 0, victimChecked: 0, majority: 0, majorityChecked: 0 }
  const staleReads: string[] = []
  const isStale = (key: string, value: string) =>
    setKeys.includes(key) ? value !== `set:${key}` : (JSON.parse(value) as { v: number }).v !== 2
  // All at once, so that every get is made at heal + 1 s (one after the other took seconds on a busy machine).
  const checks = [...majority, cluster.member(victim)].flatMap((m) =>
    [...setKeys, ...removedKeys].map(async (key) => {
      const got = await m.get(GROUP, key)
      const side = majority.includes(m) ? 'majority' : 'victim'
      stale[`${side}Checked`]++
      if (!isStale(key, got.value)) return
      stale[side]++
      if (staleReads.length < 10)
        staleReads.push(`${m.url} (${side}) ${setKeys.includes(key) ? 'set' : 'removed'} ${key}: ${got.value.slice(0, 120)}`)
    }),
  )
  await Promise.all(checks)

  const reports = await Promise.all(loads)
  const late = await lateLoad
  const transitions = await Promise.all(majority.map((m) => m.transitions()))
  return {
    ...(await summary(cluster, s.name, merge(reports.slice(0, majority.length)), merge([reports.at(-1), late]), before, steady)),
    stale,
    staleReads,
    replicated,
    unreachable: writes.reduce((n, w) => n + w.unreachable.length, 0),
    victimMarked: transitions.flat().filter((tr) => tr.peer === cluster.url(victim) && tr.to !== 'up' && tr.at >= startedAt).length,
  }
}

/** The figures every scenario reports: gets on each side, and origin loads of `victimKeys` since `before`. */
export async function summary(
  cluster: NetCluster,
  name: string,
  side: WorkersReport,
  cut: WorkersReport,
  before: Map<HaMember, Record<string, number>>,
  victimKeys: string[],
): Promise<Omit<ScenarioResult, 'replicated' | 'unreachable' | 'victimMarked'>> {
  let victimKeyLoads = 0
  for (const [m, byKey] of await loadsByMember(cluster))
    for (const k of victimKeys) victimKeyLoads += (byKey[k] ?? 0) - (before.get(m)?.[k] ?? 0)
  return {
    name,
    gets: { majority: side.gets, victim: cut.gets },
    failed: { majority: side.failed, victim: cut.failed },
    slowestMs: { majority: Math.round(side.maxMs), victim: Math.round(cut.maxMs) },
    victimKeyLoadsPct: victimKeys.length === 0 ? 0 : (100 * victimKeyLoads) / victimKeys.length,
    errors: [...side.errors, ...cut.errors].slice(0, 5).map((e) => `${e.name}: ${e.message}`),
  }
}

/** The scenario table, in Markdown. */
export function table(results: ScenarioResult[], note: string): string {
  const rows = results.map((r) =>
    [
      r.name,
      `${r.failed.majority} of ${r.gets.majority} / ${r.failed.victim} of ${r.gets.victim}`,
      `${r.slowestMs.majority} / ${r.slowestMs.victim}`,
      `${r.victimKeyLoadsPct.toFixed(1)} %`,
      r.stale ? `${r.stale.victim} of ${r.stale.victimChecked} / ${r.stale.majority} of ${r.stale.majorityChecked}` : 'n/a',
    ].join(' | '),
  )
  return [
    "| scenario | failed gets, majority / cut-off | slowest get ms, majority / cut-off | origin loads of the cut-off owner's keys | stale reads 1 s after the heal, cut-off / majority |",
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r} |`),
    '',
    note,
    '',
  ].join('\n')
}
