// A get sent to a peer and waiting for its answer frame, and how a frame settles it: shared by the
// batched request (batch-client.ts) and the peer stream (stream-client.ts), so that a key's answer
// means the same whichever way it travelled.
import { InvalidValueError, LoadError, LoadTimeoutError, PeerUnavailableError } from './errors.js'
import type { BatchItem, Frame } from './frames.js'
import type { WireEntry } from './protocol.js'
import type { FetchTraceContext } from './tracing.js'
import { plausibleVersion } from './versions.js'

/** How many times a key answered `retry` (a spent batch budget) is asked for again before giving up on that peer. */
const MAX_RETRIES = 8

let requests = 0

/** The number of the next request (a batch, or one write of a stream) that carries keys, per process from 1: for tracing. */
export function nextRequestNumber(): number {
  return ++requests
}

/** A get waiting for its answer. */
export interface Queued extends BatchItem {
  resolve(f: WireEntry | undefined): void
  reject(err: unknown): void
  settled: boolean
  /** Its peercache:fetch context, when a tracer listens. */
  trace: FetchTraceContext | undefined
  /** Times it was answered `retry` (the owner's batch budget was spent). */
  retries: number
}

/** Settles a queued get: with its value (undefined: a peek that missed), or with `err` when one is given. */
export function settle(q: Queued, value: WireEntry | undefined, err?: unknown): void {
  if (q.settled) return
  q.settled = true
  if (err === undefined) q.resolve(value)
  else q.reject(err)
}

/**
 * A key the owner answered `retry`: settled here, and its copy to ask for again (in a later batch),
 * or undefined once it was retried too often (rejected with PeerUnavailableError).
 */
export function retried(peer: string, q: Queued): Queued | undefined {
  q.settled = true
  if (q.retries < MAX_RETRIES) return { ...q, settled: false, retries: q.retries + 1 }
  q.reject(new PeerUnavailableError(peer, `still over the batch budget after ${MAX_RETRIES} tries`))
  return undefined
}

export function settleFrame(peer: string, q: Queued, f: Frame, maxVersionAheadMs: number): void {
  if (f.status === 'ok' && !plausibleVersion(f.version, maxVersionAheadMs))
    settle(q, undefined, new PeerUnavailableError(peer, `answered with an implausible version ${f.version}`))
  else if (f.status === 'ok') settle(q, { bytes: f.payload, expiresAt: f.expiresAt, version: f.version })
  else if (f.status === 'absent' && !plausibleVersion(f.version, maxVersionAheadMs))
    settle(q, undefined, new PeerUnavailableError(peer, `answered with an implausible version ${f.version}`))
  else if (f.status === 'absent') settle(q, { bytes: f.payload, expiresAt: f.expiresAt, version: f.version, absent: true })
  else if (f.status === 'miss') settle(q, undefined)
  else settle(q, undefined, frameError(peer, q, f))
}

/** The error an error frame stands for: the origin's (final) or the peer's (try elsewhere). */
function frameError(peer: string, q: Queued, f: Frame): Error {
  const message = f.payload.toString('utf8')
  if (f.status === 'load') return new LoadError(q.group, q.key, message, { peer })
  if (f.status === 'load-timeout') return new LoadTimeoutError(q.group, q.key, message, { peer })
  if (f.status === 'invalid-value') return new InvalidValueError(q.group, q.key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `${f.status}: ${message}`, { reason: f.status })
}

/**
 * Fails the keys of `items` still waiting after fetchTimeoutMs without a value: LoadTimeoutError
 * when the peer is alive (it spoke within peerTimeoutMs: heartbeats) but its origin is slow (the
 * origin's fault: nothing is loaded again here), PeerUnavailableError when it went silent (its keys
 * go to a replica or load here).
 */
export function failSlow(peer: string, items: Iterable<Queued>, alive: boolean, fetchTimeoutMs: number): void {
  const message = `no value within fetchTimeoutMs (${fetchTimeoutMs} ms)`
  for (const q of items) {
    if (!q.settled)
      settle(q, undefined, alive ? new LoadTimeoutError(q.group, q.key, message, { peer }) : new PeerUnavailableError(peer, message))
  }
}
