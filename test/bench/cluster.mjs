// A peercache cluster of OS processes on 127.0.0.1: each child listens on a free port first, then
// every one joins the same membership, so nobody has to guess ports.
import { startRole, stopAll } from './procs.mjs'

/**
 * Starts `names.length` peer processes (named for their CPU profiles) and joins them;
 * `groupsFor(i)` and `peerOptionsFor(i)` give process i's group specs and Peer options (see
 * roles/peer.mjs `init`). Resolves with { procs, urls }; on failure, stops whatever started.
 */
export async function startCluster(names, groupsFor, peerOptionsFor = () => ({})) {
  const procs = []
  try {
    for (const name of names) procs.push(await startRole('peer', { name }))
    const urls = await Promise.all(procs.map((p) => p.call('listen')))
    await Promise.all(
      procs.map((p, i) => p.call('init', [{ self: urls[i], peers: urls, groups: groupsFor(i), peerOptions: peerOptionsFor(i) }])),
    )
    return { procs, urls }
  } catch (err) {
    await stopAll(procs)
    throw err
  }
}

/** Sums numeric fields of several processes' group stats. */
export function sumStats(statsList, fields) {
  return Object.fromEntries(fields.map((f) => [f, statsList.reduce((sum, s) => sum + s[f], 0)]))
}

/** The Peer options given on the command line (--connections, --pipelining), for every process of a cluster. */
export function commandLinePeerOptions({ connections, pipelining }) {
  const o = {}
  if (connections !== undefined) o.connections = connections
  if (pipelining !== undefined) o.pipelining = pipelining
  return o
}
