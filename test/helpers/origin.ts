// A test origin: a loader that records every call (which peer, which key, with what context) and can
// be held shut, so a test controls when loads finish instead of sleeping.
import type { LoadContext } from '../../lib/index.js'

export interface OriginCall {
  /** Which peer's loader ran (the name given to loaderFor). */
  by: string
  key: string
  ctx: LoadContext
}

export class Origin {
  readonly calls: OriginCall[] = []
  /** Makes the value of a key; may throw (the load rejects). Default: the bytes of `value of ${key}`. */
  value: (key: string, call: OriginCall) => unknown = (key) => Buffer.from(`value of ${key}`)
  #gate: Promise<void> | undefined
  #open: (() => void) | undefined
  readonly #watchers: { count: number; resolve: () => void }[] = []

  /** Loads started from now on wait until release() (or until their ctx.signal aborts). */
  hold(): void {
    if (this.#gate) return
    this.#gate = new Promise<void>((resolve) => (this.#open = resolve))
  }

  /** Lets every held load finish. */
  release(): void {
    this.#open?.()
    this.#gate = undefined
    this.#open = undefined
  }

  /** The loader to give a group; `by` names the peer it runs on. */
  loaderFor(by: string): (key: string, ctx: LoadContext) => Promise<unknown> {
    return async (key, ctx) => {
      const call: OriginCall = { by, key, ctx }
      this.calls.push(call)
      for (const w of this.#watchers.filter((w) => this.calls.length >= w.count)) {
        this.#watchers.splice(this.#watchers.indexOf(w), 1)
        w.resolve()
      }
      if (this.#gate) await abortable(this.#gate, ctx.signal)
      return this.value(key, call)
    }
  }

  /** Loader calls so far, for one key or all. */
  count(key?: string): number {
    return key === undefined ? this.calls.length : this.calls.filter((c) => c.key === key).length
  }

  /** Resolves once `count` loads have started in total. */
  started(count = 1): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve()
    return new Promise((resolve) => this.#watchers.push({ count, resolve }))
  }
}

function abortable(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    })
  })
}
