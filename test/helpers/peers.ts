// N in-process peers on their own loopback ports, with the ring the test expects them to build.
import { Peer, type Group, type GroupOptions, type PeerOptions } from '../../lib/index.js'
import { Ring } from '../../lib/ring.js'
import { freePort, type Teardown } from './net.js'

export interface TestPeers {
  readonly peers: Peer[]
  readonly urls: string[]
  /** The ring every peer should have built (same URLs, same vnodes). */
  readonly ring: Ring
  /** Index in `peers` of the key's owner. */
  ownerIndex(key: string): number
  /** Creates the same group on every peer; `options(i)` gives peer i's options. */
  group<T>(name: string, options: (i: number) => GroupOptions<T>): Group<T>[]
}

/**
 * Starts `n` peers that know each other, each listening on 127.0.0.1; all are closed at teardown.
 * `listFor(i, urls)` gives peer i its peer list (default: `urls`), e.g. in another order.
 */
export async function startPeers(
  t: Teardown,
  n: number,
  options: Omit<PeerOptions, 'self' | 'peers'> = {},
  listFor: (i: number, urls: string[]) => string[] = (_i, urls) => urls,
): Promise<TestPeers> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()))
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const peers = urls.map((self, i) => new Peer({ ...options, self, peers: listFor(i, urls) }))
  t.teardown(() => Promise.all(peers.map((p) => p.close())))
  await Promise.all(peers.map((p, i) => p.listen({ port: ports[i], host: '127.0.0.1' })))
  const ring = new Ring(urls, options.vnodes)
  return {
    peers,
    urls,
    ring,
    ownerIndex: (key) => urls.indexOf(ring.owners(key, 1)[0]!),
    // The overloads of peer.group() tie the codec to T; a generic helper cannot name one, hence the casts.
    group: <T>(name: string, opts: (i: number) => GroupOptions<T>) =>
      peers.map((p, i) => p.group(name, opts(i) as never) as unknown as Group<T>),
  }
}

/** The first of `candidates` (default k0, k1, …) that `pick` accepts: e.g. a key owned by a given peer. */
export function findKey(pick: (key: string) => boolean, candidates: Iterable<string> = numberedKeys('k')): string {
  for (const key of candidates) if (pick(key)) return key
  throw new Error('no candidate key matched')
}

export function* numberedKeys(prefix: string, limit = 1_000_000): Generator<string> {
  for (let i = 0; i < limit; i++) yield `${prefix}${i}`
}
