// Singleflight: at most one call per key at a time; everyone who asks meanwhile shares its result.
// Unlike Go's singleflight, callers can leave (AbortSignal) without stopping the call for the
// others, and a call can be forgotten so that a newer write is never overwritten by its result.
import { AbortError } from './errors.js'

/** What the function running a call can see of it; `N` is what it may note about its result. */
export interface CallState<N = unknown> {
  /**
   * Set when `forget(key)` detached the call (a set or remove of the key happened meanwhile):
   * its result still reaches the callers who were waiting, but must not be cached.
   */
  readonly forgotten: boolean
  /** Whether the call was aborted: every waiter left, or `abortAll`. */
  readonly aborted: boolean
  /** Why it was aborted (undefined while it was not). */
  readonly reason: unknown
  /** Aborts with the call. Made on first use: most calls (fetches of hot keys) never need one. */
  readonly signal: AbortSignal
  /** Aborts the call's signal from within (its function gives up on the work, e.g. past a timeout). */
  abort(reason: unknown): void
  /**
   * Set by the call's function before it returns, for every waiter to read (through `current`):
   * the group notes where the value came from, so that each get, joined or not, is counted by source.
   */
  note: N | undefined
}

class Call<T, N> implements CallState<N> {
  forgotten = false
  note: N | undefined = undefined
  promise: Promise<T> = undefined as never
  /** Waiters that can still leave (they passed a signal). */
  leavable = 0
  /** A waiter without a signal stays to the end, so the call can never be abandoned. */
  pinned = false
  aborted = false
  reason: unknown = undefined
  #controller: AbortController | undefined

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.aborted) this.#controller.abort(this.reason)
    }
    return this.#controller.signal
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.#controller?.abort(reason)
  }
}

export class Flight<T, N = unknown> {
  readonly #calls = new Map<string, Call<T, N>>()

  /** Keys with a call under way. */
  get size(): number {
    return this.#calls.size
  }

  has(key: string): boolean {
    return this.#calls.has(key)
  }

  /** The call under way for `key`: right after `run`, the one that caller started or joined. */
  current(key: string): CallState<N> | undefined {
    return this.#calls.get(key)
  }

  /**
   * Joins the call for `key`, or starts it with `start`. `start` gets the call's state, whose signal
   * aborts when every waiter has left (or `abortAll` is called); the call always ends, whether
   * `start` returns, throws synchronously or rejects. `signal` only ends this caller's wait.
   */
  run(key: string, start: (call: CallState<N>) => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal))
    let call = this.#calls.get(key)
    if (call === undefined) {
      const c = new Call<T, N>()
      // A synchronous throw becomes a rejection like any other: the call always ends.
      try {
        c.promise = Promise.resolve(start(c))
      } catch (err) {
        c.promise = Promise.reject(err)
      }
      // Registered before any waiter's handler, so the key is free again by the time a waiter
      // sees the outcome (a retry after an error starts a new call).
      const done = () => this.#detach(key, c)
      c.promise.then(done, done)
      this.#calls.set(key, c)
      call = c
    }
    if (signal === undefined) {
      call.pinned = true
      return call.promise
    }
    return this.#wait(key, call, signal)
  }

  /** Detaches the call for `key` (if any): later callers start a new one, and its result is marked stale. */
  forget(key: string): boolean {
    const call = this.#calls.get(key)
    if (call === undefined) return false
    call.forgotten = true
    this.#calls.delete(key)
    return true
  }

  /** Detaches every call (a clear of the group, a resync): their results reach their waiters but are cached nowhere. */
  forgetAll(): void {
    for (const key of [...this.#calls.keys()]) this.forget(key)
  }

  /** Aborts every call (on close); their waiters get the rejection their start function gives. */
  abortAll(reason: unknown): void {
    for (const [key, call] of this.#calls) {
      call.abort(reason)
      this.#detach(key, call)
    }
  }

  #detach(key: string, call: Call<T, N>): void {
    if (this.#calls.get(key) === call) this.#calls.delete(key)
  }

  #wait(key: string, call: Call<T, N>, signal: AbortSignal): Promise<T> {
    call.leavable++
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        call.leavable--
        if (call.leavable === 0 && !call.pinned) {
          // Nobody is left to use the result: stop the work, and let the next caller start afresh.
          call.forgotten = true
          this.#detach(key, call)
          call.abort(abortReason(signal))
        }
        reject(abortReason(signal))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      call.promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort)
          resolve(value)
        },
        (err) => {
          signal.removeEventListener('abort', onAbort)
          reject(err)
        },
      )
    })
  }
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new AbortError()
}
