// Failure detection: which peers this process should route around right now.
// Passive signals (a request's transport error or timeout; any answer) move a peer between 'up',
// 'suspect' and 'down'; an active probe confirms a suspicion at once and, while the peer is down,
// checks it again after a cooldown that doubles on each failed probe. A peer that is not 'up' gets no
// new requests, so a hung peer costs callers the requests already sent to it, never one timeout per get.
// Over 300 lines: PeerHealth is one state machine (up, suspect, down, probes, cooldowns); split, its
// transitions would have to be read across files.
import { HEALTH_DEFAULTS } from './defaults.js'
import { InvalidOptionError } from './errors.js'
import { positive } from './validate.js'

/** 'up': routed to. 'suspect': a request failed, a probe is deciding. 'down': probed after a cooldown until it answers. */
export type PeerState = 'up' | 'suspect' | 'down'

/** Why a peer changed state, as `onChange` reports it. */
export type HealthReason = 'failure' | 'probe-ok' | 'probe-failed' | 'answered' | 'marked-down'

/**
 * Asks `peer` whether it is serving: resolves true if so; false, a rejection or no answer within
 * `probeTimeoutMs` count as no. It must give up when `signal` aborts: until it settles, no other
 * probe of that peer starts.
 */
export type HealthProbe = (peer: string, signal: AbortSignal) => Promise<boolean>

export interface PeerHealthOptions {
  /** The active check, usually `createHttpProbe(...).probe`. Required. */
  probe: HealthProbe
  /**
   * Failed requests in a row, with no answer from the peer in between, that take it down without
   * waiting for the confirmation probe. Counts across a suspicion a probe cleared: a peer whose
   * probe passes but whose requests keep failing goes down on its next failure.
   * @default {@link HEALTH_DEFAULTS}.failuresToDown (2)
   */
  failuresToDown?: number
  /**
   * How long one probe may take, in ms; past it the probe counts as failed and is aborted.
   * @default {@link HEALTH_DEFAULTS}.probeTimeoutMs (1000)
   */
  probeTimeoutMs?: number
  /**
   * The first cooldown of a down peer, in ms: the wait before probing it again. Each failed probe
   * doubles it, up to `maxCooldownMs`; an answer from the peer resets it. Each wait is
   * drawn between half and all of the cooldown, so the processes that lost the same peer do not
   * probe it in step.
   * @default {@link HEALTH_DEFAULTS}.cooldownMs (250)
   */
  cooldownMs?: number
  /**
   * The longest cooldown, in ms: how late at most a down peer that recovered is noticed.
   * @default {@link HEALTH_DEFAULTS}.maxCooldownMs (1000)
   */
  maxCooldownMs?: number
  /**
   * Called after each change of state (never for `forget`). It runs inside `failure`/`success`/
   * `markDown` or when a probe settles, so it should be quick; if it throws, the error
   * becomes a process warning and detection goes on.
   */
  onChange?: (peer: string, from: PeerState, to: PeerState, reason: HealthReason) => void
  /** The clock for `snapshot()` times, in ms. Default `Date.now`. */
  now?: () => number
  /** Random numbers in [0, 1) for the cooldowns' jitter. Default `Math.random`. */
  random?: () => number
}

/** One peer's health, for stats and metrics. */
export interface PeerHealthSnapshot {
  peer: string
  state: PeerState
  /** When the peer entered this state (the `now` clock, ms). */
  since: number
  /** Failed requests since the peer last answered one. */
  failures: number
  /** While down: the wait drawn before the next probe, in ms; else 0. */
  cooldownMs: number
  /** While down: when the next probe is due (the `now` clock, ms), unless a probe is under way. */
  nextProbeAt: number | undefined
  /** A probe of this peer is under way. */
  probing: boolean
  /** Times the peer went down. */
  downs: number
  /** Probes started, and how many of them failed. */
  probes: number
  failedProbes: number
  /** The last failure's message. */
  lastError: string | undefined
}

/** What is kept per peer: the snapshot's fields and the machinery behind them. */
interface Tracked extends Omit<PeerHealthSnapshot, 'probing'> {
  /** Failed probes since the peer last answered a request: the exponent of the cooldown. */
  level: number
  timer: NodeJS.Timeout | undefined
  /** A probe of this record is running and its result still counts. */
  deciding: boolean
  /** A probe is wanted but another of the same peer is still running: it starts when that one settles. */
  queued: boolean
  lastFailure: unknown
}

interface Running {
  readonly controller: AbortController
  readonly timeout: NodeJS.Timeout
  readonly settled: Promise<void>
}

export class PeerHealth {
  readonly #probe: HealthProbe
  readonly #failuresToDown: number
  readonly #probeTimeoutMs: number
  readonly #cooldownMs: number
  readonly #maxCooldownMs: number
  readonly #onChange: PeerHealthOptions['onChange']
  readonly #now: () => number
  readonly #random: () => number
  /** Only peers that ever failed or were marked; any other peer is up. */
  readonly #peers = new Map<string, Tracked>()
  /** At most one probe per peer, until its promise settles (not merely until it timed out). */
  readonly #running = new Map<string, Running>()
  #closed = false

  constructor(options: PeerHealthOptions) {
    if (options === null || typeof options !== 'object')
      throw new InvalidOptionError('options', 'new PeerHealth({ probe }) needs an options object')
    if (typeof options.probe !== 'function') throw new InvalidOptionError('probe', 'must be a function (peer, signal) => Promise<boolean>')
    const failuresToDown = options.failuresToDown ?? HEALTH_DEFAULTS.failuresToDown
    if (!Number.isInteger(failuresToDown) || failuresToDown < 1)
      throw new InvalidOptionError('failuresToDown', `must be an integer ≥ 1, got ${String(failuresToDown)}`)
    this.#probe = options.probe
    this.#failuresToDown = failuresToDown
    this.#probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? HEALTH_DEFAULTS.probeTimeoutMs)
    this.#cooldownMs = positive('cooldownMs', options.cooldownMs ?? HEALTH_DEFAULTS.cooldownMs)
    // Left out, the ceiling is at least the first cooldown given.
    this.#maxCooldownMs = positive('maxCooldownMs', options.maxCooldownMs ?? Math.max(HEALTH_DEFAULTS.maxCooldownMs, this.#cooldownMs))
    if (this.#maxCooldownMs < this.#cooldownMs)
      throw new InvalidOptionError('maxCooldownMs', `must be ≥ cooldownMs (${this.#cooldownMs}), got ${this.#maxCooldownMs}`)
    for (const name of ['onChange', 'now', 'random'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') throw new InvalidOptionError(name, 'must be a function')
    }
    this.#onChange = options.onChange
    this.#now = options.now ?? Date.now
    this.#random = options.random ?? Math.random
  }

  /** Whether to send requests to `peer`: only when it is up. One Map lookup, for the miss path. */
  isAvailable(peer: string): boolean {
    const p = this.#peers.get(peer)
    return p === undefined || p.state === 'up'
  }

  /**
   * A request to `peer` got no answer: a connection error, a reset, a timeout. Not for an HTTP
   * answer (that proves the peer alive: call `success`) nor for a caller's own abort. Calls with
   * the same `err` object count as one failure.
   */
  failure(peer: string, err?: unknown): void {
    if (this.#closed) return
    const p = this.#track(peer)
    // One failed request reported by each of its waiters (a batch of keys) counts once.
    if (err !== undefined && err === p.lastFailure) return
    p.lastFailure = err
    p.lastError = describe(err)
    // Requests sent before it went down are still failing: the probes decide from here.
    if (p.state === 'down') return
    p.failures++
    if (p.failures >= this.#failuresToDown) this.#enter(p, 'down', 'failure')
    else if (p.state === 'up') this.#enter(p, 'suspect', 'failure')
  }

  /** `peer` answered a request (any HTTP answer, an error status included): it is up, with a clean record. */
  success(peer: string): void {
    const p = this.#peers.get(peer)
    if (p === undefined || this.#closed) return
    this.#clear(p)
    if (p.state !== 'up') this.#enter(p, 'up', 'answered')
  }

  /**
   * Probes `peer` now without taking it out of routing, e.g. when a request to it has waited long
   * (a stopped process accepts connections but never answers): if the probe fails, it goes down.
   * Does nothing unless the peer is up and no probe of it is deciding.
   */
  check(peer: string): void {
    if (this.#closed) return
    const p = this.#track(peer)
    if (p.state === 'up' && !p.deciding) this.#startProbe(p)
  }

  /** Takes `peer` out of routing now, e.g. when it announced that it is leaving; probes then watch for its return. */
  markDown(peer: string): void {
    if (this.#closed) return
    const p = this.#track(peer)
    if (p.state === 'down') return
    p.deciding = false // a probe begun before the announcement must not bring it back
    this.#enter(p, 'down', 'marked-down')
  }

  /** Drops everything known about `peer` (it left the membership): no more probes, its probe under way is aborted. */
  forget(peer: string): void {
    const p = this.#peers.get(peer)
    if (p === undefined) return
    this.#peers.delete(peer)
    this.#cancelTimer(p)
    this.#running.get(peer)?.controller.abort()
  }

  /**
   * Each of `peers` (sorted; one never heard of is up with a clean record), or without `peers` every
   * peer that ever failed or was marked.
   */
  snapshot(peers?: readonly string[]): PeerHealthSnapshot[] {
    const records = peers === undefined ? [...this.#peers.values()] : peers.map((peer) => this.#peers.get(peer) ?? this.#fresh(peer))
    return records
      .sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
      .map((p) => ({
        peer: p.peer,
        state: p.state,
        since: p.since,
        failures: p.failures,
        cooldownMs: p.state === 'down' ? p.cooldownMs : 0,
        nextProbeAt: p.nextProbeAt,
        probing: this.#running.has(p.peer),
        downs: p.downs,
        probes: p.probes,
        failedProbes: p.failedProbes,
        lastError: p.lastError,
      }))
  }

  /** Stops every timer and aborts the probes under way; resolves when they settled. Signals are ignored from now on. */
  async close(): Promise<void> {
    this.#closed = true
    for (const p of this.#peers.values()) this.#cancelTimer(p)
    const running = [...this.#running.values()]
    for (const r of running) {
      clearTimeout(r.timeout)
      r.controller.abort()
    }
    await Promise.allSettled(running.map((r) => r.settled))
  }

  /** The peer answered or was marked up: a clean record, and a probe under way no longer decides anything. */
  #clear(p: Tracked): void {
    p.failures = 0
    p.level = 0
    p.deciding = false
  }

  #track(peer: string): Tracked {
    let p = this.#peers.get(peer)
    if (p === undefined) {
      p = this.#fresh(peer)
      this.#peers.set(peer, p)
    }
    return p
  }

  /** The record of a peer that never failed: up since now, nothing counted. */
  #fresh(peer: string): Tracked {
    return {
      peer,
      state: 'up',
      since: this.#now(),
      failures: 0,
      level: 0,
      cooldownMs: 0,
      nextProbeAt: undefined,
      timer: undefined,
      deciding: false,
      queued: false,
      lastFailure: undefined,
      downs: 0,
      probes: 0,
      failedProbes: 0,
      lastError: undefined,
    }
  }

  /** Changes state, sets up what the new state needs (a probe, a cooldown, nothing), then tells onChange. */
  #enter(p: Tracked, to: PeerState, reason: HealthReason): void {
    const from = p.state
    if (from === to) return
    p.state = to
    p.since = this.#now()
    if (to === 'up') {
      this.#cancelTimer(p)
      p.queued = false
    } else if (to === 'suspect') {
      this.#startProbe(p)
    } else {
      p.downs++
      // A probe already running or queued for it reschedules when it fails.
      if (!p.deciding && !p.queued) this.#schedule(p)
    }
    try {
      this.#onChange?.(p.peer, from, to, reason)
    } catch (err) {
      process.emitWarning(`peercache: health onChange threw: ${describe(err)}`, { code: 'PEERCACHE_HEALTH_CALLBACK' })
    }
  }

  /** Probes `p` after its current cooldown, which then doubles. */
  #schedule(p: Tracked): void {
    if (p.timer !== undefined || this.#closed) return
    const ceiling = Math.min(this.#maxCooldownMs, this.#cooldownMs * 2 ** Math.min(p.level, 30))
    p.level++
    p.cooldownMs = Math.round(ceiling / 2 + (ceiling / 2) * this.#random()) // timers count whole ms
    p.nextProbeAt = this.#now() + p.cooldownMs
    p.timer = setTimeout(() => {
      p.timer = undefined
      p.nextProbeAt = undefined
      this.#startProbe(p)
    }, p.cooldownMs)
    p.timer.unref()
  }

  #cancelTimer(p: Tracked): void {
    if (p.timer !== undefined) clearTimeout(p.timer)
    p.timer = undefined
    p.nextProbeAt = undefined
  }

  #startProbe(p: Tracked): void {
    if (this.#closed) return
    if (this.#running.has(p.peer)) {
      p.queued = true
      return
    }
    p.queued = false
    p.deciding = true
    p.probes++
    const controller = new AbortController()
    let decided = false
    const decide = (ok: boolean) => {
      if (decided) return
      decided = true
      clearTimeout(timeout)
      // An answer, a mark or forget may have overruled this probe while it ran.
      if (!p.deciding || this.#closed || this.#peers.get(p.peer) !== p) return
      p.deciding = false
      p.queued = false // this answer serves whoever asked meanwhile
      this.#probed(p, ok)
    }
    const timeout = setTimeout(() => {
      controller.abort(new Error(`health probe timed out after ${this.#probeTimeoutMs} ms`))
      decide(false)
    }, this.#probeTimeoutMs)
    timeout.unref()
    const settled = runProbe(this.#probe, p.peer, controller.signal)
      .then(decide)
      .finally(() => {
        this.#running.delete(p.peer)
        const current = this.#peers.get(p.peer)
        if (current?.queued) this.#startProbe(current)
      })
    this.#running.set(p.peer, { controller, timeout, settled })
  }

  #probed(p: Tracked, ok: boolean): void {
    // Only reached if nothing fresher (an answer, markDown) came while the probe ran.
    if (ok) {
      this.#enter(p, 'up', 'probe-ok')
      return
    }
    p.failedProbes++
    if (p.state === 'down') this.#schedule(p)
    else this.#enter(p, 'down', 'probe-failed') // a suspicion, or a check() of an up peer
  }
}

async function runProbe(probe: HealthProbe, peer: string, signal: AbortSignal): Promise<boolean> {
  try {
    return (await probe(peer, signal)) === true
  } catch {
    return false
  }
}

function describe(err: unknown): string | undefined {
  if (err === undefined) return undefined
  const e = err as { message?: unknown }
  return typeof e?.message === 'string' ? e.message : String(err)
}
