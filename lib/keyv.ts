// A Keyv storage adapter backed by a peercache group (`import { KeyvPeercache } from 'peercache/keyv'`),
// so code written against Keyv, cache-manager or cacheable moves from Redis to peercache with one
// line. It implements Keyv's store contract with a relative ttl (Keyv 5's; Keyv 6 takes it through
// its bridge for such stores). Keyv serializes values (and their expiry) before they reach a store:
// the group sees strings, so give it the 'json' codec (or 'string' when serialization stays on).
import { EventEmitter } from 'node:events'
import type { RemoveResult, SetOptions } from './options.js'

/** What the store needs of a group: any `Group<T>` fits (`peer.group(name, { codec: 'json', absentTtlMs, ... })`). */
export interface KeyvGroup {
  readonly name: string
  get(key: string): Promise<unknown>
  set(key: string, value: unknown, options?: SetOptions): Promise<unknown>
  remove(key: string): Promise<RemoveResult>
  clear(): Promise<RemoveResult>
}

/** One entry of `setMany`: `ttl` in ms from now, as Keyv passes it. */
export interface KeyvPeercacheEntry {
  key: string
  value: unknown
  ttl?: number
}

/**
 * A Keyv store over a peercache group. A Keyv namespace is a key prefix inside the group,
 * `namespace:key` (Keyv 5 prefixes keys itself; Keyv 6 leaves it to a store that has a `namespace`,
 * as this one does, so the store adds the prefix unless the key has it already, as Keyv 5 does).
 * `clear()` clears the whole group, every namespace in it (peercache cannot list keys): give each
 * namespace you clear on its own a group of its own.
 * The group should have `absentTtlMs` > 0 and may have no loader: a key never set is then absent.
 * With a loader, a key Keyv does not have is loaded from the origin, once for the cluster.
 */
export class KeyvPeercache extends EventEmitter {
  /** Options Keyv may read or set (it sets `deserialize` on some stores); unused here. */
  readonly opts: Record<string, unknown> = {}
  /** Set by Keyv: the namespace its keys are prefixed with. */
  namespace?: string
  readonly group: KeyvGroup

  constructor(group: KeyvGroup) {
    super()
    this.group = group
  }

  /** The value, or undefined when the group holds none (an absent value). */
  async get(key: string): Promise<unknown> {
    return this.group.get(this.#key(key))
  }

  async getMany(keys: string[]): Promise<unknown[]> {
    // Gets for the same owner made together travel in one batched request.
    return Promise.all(keys.map((key) => this.get(key)))
  }

  /** Stores `value` cluster-wide; `ttl` in ms from now (none or 0: the group's ttlMs). */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.group.set(this.#key(key), value, typeof ttl === 'number' && ttl > 0 ? { ttlMs: ttl } : undefined)
    return true
  }

  async setMany(entries: KeyvPeercacheEntry[]): Promise<boolean[]> {
    return Promise.all(entries.map((e) => this.set(e.key, e.value, e.ttl)))
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.getMany(keys)).map((v) => v !== undefined)
  }

  /** Removes `key` everywhere; resolves whether it held a value (one get first: peercache's remove does not say). */
  async delete(key: string): Promise<boolean> {
    const existed = await this.has(key)
    await this.group.remove(this.#key(key))
    return existed
  }

  /** Resolves true when any of the keys held a value. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const existed = await Promise.all(keys.map((key) => this.delete(key)))
    return existed.some(Boolean)
  }

  /** Clears the whole group on every reachable member (every namespace in it: see the class comment). */
  async clear(): Promise<void> {
    await this.group.clear()
  }

  /** The group's key for a Keyv key: prefixed with the namespace, unless it is already (Keyv 5 prefixes itself). */
  #key(key: string): string {
    const ns = this.namespace
    return ns === undefined || ns === '' || key.startsWith(`${ns}:`) ? key : `${ns}:${key}`
  }

  /** Nothing to close: the peer and its group belong to the application, which closes the peer. */
  async disconnect(): Promise<void> {}
}
