// Read-modify-write on one key (group.update): read the owner's entry, compute the new value, write
// it with ifVersion (or ifAbsent), and on a conflict read again and retry, a bounded number of times.
// Updates of the same key in one process run one after another: they would only conflict with each
// other, so contention (and retries) is only ever between processes.
import { setTimeout as sleep } from 'node:timers/promises'
import { UPDATE_DEFAULTS } from './defaults.js'
import { ConflictError, InvalidOptionError } from './errors.js'
import type { GroupCounters, SetOptions, SetResult, UpdateOptions, VersionedValue } from './options.js'
import type { WriteCondition } from './protocol.js'
import { integer, nonNegative } from './validate.js'

/** The longest pause before a retry, in ms. */
const MAX_BACKOFF_MS = 100

/** What an update needs of its group. */
export interface UpdateTarget<T> {
  readonly name: string
  getEntry(key: string): Promise<VersionedValue<T> | undefined>
  set(key: string, value: T, options: SetOptions): Promise<SetResult>
  readonly counters: GroupCounters
}

export class Updates<T> {
  /** The update of each key under way in this process: the next one waits for it. */
  readonly #chains = new Map<string, Promise<unknown>>()

  /** `fn`'s value for `key`, written with ifVersion or ifAbsent; retried on conflict (UpdateOptions.retries). */
  run(target: UpdateTarget<T>, key: string, fn: (value: T | undefined) => T | Promise<T>, options: UpdateOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', `update of key ${JSON.stringify(key)} needs a function`)
    const retries = integer('retries', options.retries ?? UPDATE_DEFAULTS.retries, 0)
    const ttlMs = options.ttlMs === undefined ? undefined : nonNegative('ttlMs', options.ttlMs)
    const before = this.#chains.get(key) ?? Promise.resolve()
    const mine = before.then(() => attempt(target, key, fn, retries, ttlMs))
    const tail = mine.catch(() => {})
    this.#chains.set(key, tail)
    // The last update of a key forgets its chain, so the map holds only keys being updated.
    void tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key)
    })
    return mine
  }
}

async function attempt<T>(
  target: UpdateTarget<T>,
  key: string,
  fn: (value: T | undefined) => T | Promise<T>,
  retries: number,
  ttlMs: number | undefined,
): Promise<T> {
  for (let tried = 0; ; tried++) {
    const entry = await target.getEntry(key)
    const value = await fn(entry?.value)
    const condition: SetOptions = entry === undefined ? { ifAbsent: true } : { ifVersion: entry.version }
    try {
      await target.set(key, value, { ...condition, ttlMs })
      target.counters.updates++
      return value
    } catch (err) {
      if (!(err instanceof ConflictError) || tried >= retries) throw err
      target.counters.updateRetries++
      // A random pause, longer after each conflict, so processes that collided do not collide again.
      await sleep(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** tried))
    }
  }
}

/** The condition of a set's options, checked: ifVersion a version, ifAbsent a boolean, not both. */
export function writeCondition(group: string, key: string, options: SetOptions | undefined): WriteCondition | undefined {
  const { ifVersion, ifAbsent } = options ?? {}
  const where = `group "${group}", key ${JSON.stringify(key.slice(0, 80))}`
  if (ifAbsent !== undefined && typeof ifAbsent !== 'boolean') throw new InvalidOptionError('ifAbsent', `${where}: must be a boolean`)
  if (ifVersion === undefined) return ifAbsent ? { ifAbsent: true } : undefined
  if (ifAbsent) throw new InvalidOptionError('ifVersion', `${where}: give ifVersion or ifAbsent, not both`)
  if (!Number.isSafeInteger(ifVersion) || ifVersion < 0)
    throw new InvalidOptionError('ifVersion', `${where}: must be a version from getEntry(), got ${String(ifVersion)}`)
  return { ifVersion }
}
