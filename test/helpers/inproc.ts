// An in-process cluster for freshness and replica tests: N Peers on loopback (helpers/peers.ts),
// one string group "g" on each, all loading from one recording Origin (helpers/origin.ts) whose
// values say which load made them, so a test can tell an old value from a reload.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Group, GroupOptions, PeerOptions } from '../../lib/index.js'
import { Origin } from './origin.js'
import { findKey, numberedKeys, startPeers, type TestPeers } from './peers.js'
import type { Teardown } from './net.js'

export const GROUP = 'g'

export interface GroupCluster extends TestPeers {
  readonly origin: Origin
  /** Group "g" on each peer, in the order of `peers`. */
  readonly groups: Group<string>[]
  /** Indexes in `peers` of the key's owner, its replica, then every other peer, in ring order. */
  roles(key: string): { owner: number; replica: number; others: number[] }
  /** A key whose owner and replica are the peers of these indexes. */
  keyOf(owner: number, replica: number, prefix?: string): string
}

/**
 * The value the n-th origin load of `key` returns: `${key}@${n}`. Tests compare against it, so an
 * old value, a reload and a set value (anything else) are told apart.
 */
export const loaded = (key: string, n: number) => `${key}@${n}`

/** Starts `n` peers with group "g" (string codec, 1 MiB, hot copies from the first fetch unless overridden). */
export async function startGroupCluster(
  t: Teardown,
  n: number,
  options: Partial<Omit<GroupOptions<string>, 'load' | 'codec'>> = {},
  peerOptions: Omit<PeerOptions, 'self' | 'peers'> = {},
): Promise<GroupCluster> {
  const tp = await startPeers(t, n, peerOptions)
  const origin = new Origin()
  origin.value = (key, call) => loaded(key, origin.calls.filter((c) => c.key === key).indexOf(call) + 1)
  const groups = tp.group<string>(GROUP, (i) => ({
    maxBytes: 1 << 20,
    hotThreshold: 1,
    ...options,
    codec: 'string',
    load: origin.loaderFor(`p${i}`) as GroupOptions<string>['load'],
  }))
  const roles = (key: string) => {
    const order = tp.ring.owners(key, n).map((url) => tp.urls.indexOf(url))
    return { owner: order[0]!, replica: order[1]!, others: order.slice(2) }
  }
  const keyOf = (owner: number, replica: number, prefix = 'k') =>
    findKey(
      (key) => {
        const r = roles(key)
        return r.owner === owner && r.replica === replica
      },
      numberedKeys(prefix, 100_000),
    )
  return { ...tp, origin, groups, roles, keyOf }
}

/**
 * Waits until `condition()` holds, checking every few ms; rejects after `limitMs` (generous: the
 * point is "it happens", not how fast). For effects that finish after the call that caused them
 * resolved, like an owner's copy to its replica.
 */
export async function eventually(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`)
    await sleep(5)
  }
}

/** Sleeps until the wall clock is past `time` (ms since the epoch): an absolute expiry has passed. */
export async function pastTime(time: number): Promise<void> {
  // lru-cache treats an entry as stale strictly after its expiry; 2 ms covers its 1 ms clock caching.
  const wait = time - Date.now() + 2
  if (wait > 0) await sleep(wait)
}

/** The sum of one counter of `groups`' stats. */
export function total(
  groups: Group<string>[],
  counter: 'loads' | 'replicaWrites' | 'peerErrors' | 'localLoads' | 'serverRequests',
): number {
  return groups.reduce((sum, g) => sum + g.stats()[counter], 0)
}
