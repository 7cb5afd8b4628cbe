// Tracing hooks through node:diagnostics_channel: any tracer (OpenTelemetry, a logger, metrics.ts)
// subscribes by name without peercache depending on it. A channel with no subscriber costs the
// traced path one boolean check; only then is a context object made and the call wrapped.
import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * The context of one origin load: one call of a group's loader in this process (shared by every
 * get and peer request that joined it). Subscribers get it on start, end, asyncStart, asyncEnd and
 * error; on asyncEnd it holds `result` (the loader's value) or `error` (what the loader threw).
 */
export interface LoadTraceContext {
  /** This peer's URL (`peer.self`): tells apart peers that share one process. */
  readonly self: string
  readonly group: string
  readonly key: string
  result?: unknown
  error?: unknown
}

/**
 * The context of one key sent to another peer. Requests to a peer carry batches (gets made
 * together, or while a batch to that peer is in flight, travel in one request), and a context stands for one
 * KEY of a batch, not for the request: it starts when the key is queued for the peer's next batch
 * and ends when that key's answer arrives (or its batch fails), so its duration is what that key
 * waited for the peer. Keys of one request share `batch`.
 */
export interface FetchTraceContext {
  /** This peer's URL (`peer.self`). */
  readonly self: string
  /** The peer asked: the key's owner or one of its replicas. */
  readonly peer: string
  readonly group: string
  readonly key: string
  /** A peek (the owner asking a replica for its cached copy, never a load) rather than a get. */
  readonly peek: boolean
  /**
   * The request this key went in, numbered per process from 1; 0 until the batch is sent. Keys with
   * the same number traveled together.
   */
  batch: number
  /** On asyncEnd: the value and its metadata (undefined for a peek that found nothing). */
  result?: unknown
  /** On error and asyncEnd: why the peer gave no value (a LoadError is the origin failing there). */
  error?: unknown
}

/** Origin loads: `diagnostics_channel.tracingChannel('peercache:load')`. */
export const loadChannel = diagnosticsChannel.tracingChannel<unknown, LoadTraceContext>('peercache:load')

/** Requests to other peers, one context per key: `diagnostics_channel.tracingChannel('peercache:fetch')`. */
export const fetchChannel = diagnosticsChannel.tracingChannel<unknown, FetchTraceContext>('peercache:fetch')
