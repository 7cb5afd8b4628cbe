// Change events: every process hears of every set and remove of a group's keys already (the owner
// stores, replicas get copies, every other member drops older copies), and each of those writes now
// says what it is (a ChangeNote: set or remove, by whom). This file turns what a process applies into
// events for its listeners: per key in version order, never going back, at most once, through a
// bounded queue per listener so that a slow one never holds up the cache (README, "Change events").
import { LRUCache } from 'lru-cache'
import { Expiries } from './expiries.js'
import type { GroupCounters } from './options.js'

export type ChangeKind = 'set' | 'remove' | 'expire' | 'evict'

/** One change of one key, as a listener gets it. */
export interface ChangeEvent {
  group: string
  key: string
  /**
   * `set` and `remove`: a call of set() (update() and compare-and-set included) or remove(),
   * anywhere in the cluster. `expire`: a value set with a time to live reached its expiry. `evict`:
   * this process's cache dropped its copy for room (only the process that held it hears of that).
   */
  kind: ChangeKind
  /** The owner's version of the change (a set's value, a remove's tombstone): larger for later changes of the key. */
  version: number
  /** The member (its URL) whose call made the change; this process for `expire` and `evict`. */
  origin: string
  /** For a set: when the value expires, ms since the epoch; 0: never. */
  expiresAt: number
}

export type ChangeListener = (event: ChangeEvent) => unknown

/**
 * How many keys the order is remembered for (their last event). A key forgotten here (the least
 * recently changed of more than this many) could see a late, older event once: past this,
 * order is kept for the keys changed most recently.
 */
const TRACKED_KEYS = 100_000
/** Synchronous listener calls in a row before the queue yields to the event loop. */
const BURST = 64

/** A listener and its queue: events wait here while the listener is busy; past `max`, they are dropped and counted. */
export class BoundedQueue<E> {
  readonly #listener: (event: E) => unknown
  readonly #max: number
  readonly #overflow: () => void
  readonly #failed: (err: unknown) => void
  #items: (E | undefined)[] = []
  #head = 0
  #running = false
  #closed = false

  constructor(listener: (event: E) => unknown, max: number, overflow: () => void, failed: (err: unknown) => void) {
    this.#listener = listener
    this.#max = max
    this.#overflow = overflow
    this.#failed = failed
  }

  /** Queues `event` for the listener (never calls it here: the caller is a write path). */
  push(event: E): void {
    if (this.#closed) return
    if (this.#items.length - this.#head >= this.#max) {
      this.#overflow()
      return
    }
    this.#items.push(event)
    if (!this.#running) {
      this.#running = true
      setImmediate(() => void this.#drain())
    }
  }

  /** Stops delivery; what is queued is dropped. */
  close(): void {
    this.#closed = true
    this.#items = []
    this.#head = 0
  }

  /** One event at a time, in order: an async listener is awaited before the next one. */
  async #drain(): Promise<void> {
    let burst = 0
    while (!this.#closed && this.#head < this.#items.length) {
      const event = this.#items[this.#head] as E
      this.#items[this.#head++] = undefined
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head)
        this.#head = 0
      }
      try {
        const result = this.#listener(event)
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') await result
        else if (++burst % BURST === 0) await new Promise((resolve) => setImmediate(resolve))
      } catch (err) {
        this.#failed(err)
      }
    }
    this.#running = false
  }
}

export class ChangeEvents {
  readonly #group: string
  readonly #self: string
  readonly #maxQueued: number
  readonly #counters: GroupCounters
  readonly #queues = new Set<BoundedQueue<ChangeEvent>>()
  /** Per key, the last event delivered: an older one (or the same again) is not. */
  readonly #last = new LRUCache<string, { version: number; kind: ChangeKind }>({ max: TRACKED_KEYS })
  readonly #expiries = new Expiries((key, version) => this.#expired(key, version))
  #warned = false

  constructor(group: string, self: string, maxQueued: number, counters: GroupCounters) {
    this.#group = group
    this.#self = self
    this.#maxQueued = maxQueued
    this.#counters = counters
  }

  /** Whether anyone listens: the write paths skip everything else when not. */
  get active(): boolean {
    return this.#queues.size > 0
  }

  /** Adds a listener; returns the function that removes it (and drops what waits in its queue). */
  subscribe(listener: ChangeListener): () => void {
    let reported = false
    const queue = new BoundedQueue<ChangeEvent>(
      listener,
      this.#maxQueued,
      () => this.#overflowed(),
      (err) => {
        if (reported) return
        reported = true
        process.emitWarning(`peercache: group "${this.#group}": a change listener threw (reported once per listener): ${String(err)}`, {
          code: 'PEERCACHE_EVENT_LISTENER_FAILED',
        })
      },
    )
    this.#queues.add(queue)
    return () => {
      queue.close()
      this.#queues.delete(queue)
      if (this.#queues.size === 0) {
        this.#last.clear()
        this.#expiries.clear()
      }
    }
  }

  /** A change this process applied: delivered unless an event as new or newer was for this key. */
  note(key: string, kind: ChangeKind, version: number, origin: string, expiresAt = 0): void {
    if (this.#queues.size === 0) return
    const last = this.#last.get(key)
    if (last !== undefined) {
      if (version < last.version) return
      // The same version again: only the end of a value (its expiry or eviction) after its set.
      if (version === last.version && !(last.kind === 'set' && (kind === 'expire' || kind === 'evict'))) return
    }
    this.#last.set(key, { version, kind })
    if (kind === 'set' && expiresAt > 0) this.#expiries.add(key, version, expiresAt)
    // Values overwritten before they expired leave their expiries behind: dropped once they pile up.
    if (this.#expiries.size > 2 * TRACKED_KEYS) this.#expiries.compact((k, v) => this.#isLatestSet(k, v))
    const event: ChangeEvent = { group: this.#group, key, kind, version, origin, expiresAt: kind === 'set' ? expiresAt : 0 }
    for (const queue of this.#queues) queue.push(event)
  }

  /** A value this process's cache evicted for room. */
  evicted(key: string, version: number): void {
    this.note(key, 'evict', version, this.#self)
  }

  /** Stops delivery to every listener (the peer closed). */
  close(): void {
    for (const queue of this.#queues) queue.close()
    this.#queues.clear()
    this.#expiries.clear()
  }

  #expired(key: string, version: number): void {
    if (this.#isLatestSet(key, version)) this.note(key, 'expire', version, this.#self)
  }

  #isLatestSet(key: string, version: number): boolean {
    const last = this.#last.peek(key)
    return last?.version === version && last.kind === 'set'
  }

  #overflowed(): void {
    this.#counters.eventsDropped++
    if (this.#warned) return
    this.#warned = true
    process.emitWarning(
      `peercache: group "${this.#group}": a change listener is slower than the changes: events past maxQueuedEvents (${this.#maxQueued}) are dropped (stats().eventsDropped counts them; said once)`,
      { code: 'PEERCACHE_EVENTS_DROPPED' },
    )
  }
}
