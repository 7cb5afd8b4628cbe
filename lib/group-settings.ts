// A group's options, checked and completed with their defaults (GROUP_DEFAULTS): what Group and its
// parts read. Each bad option is an InvalidOptionError naming it; nothing is made before all pass.
import { type Codec, resolveCodec } from './codec.js'
import { GROUP_DEFAULTS } from './defaults.js'
import { InvalidGroupError, InvalidOptionError } from './errors.js'
import { GROUP_OPTION_NAMES, type GroupOptions, type LoadContext, type Loaded } from './options.js'
import { MAX_KEY_BYTES } from './protocol.js'
import { integer, knownOptions, nonNegative, positive } from './validate.js'

const GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/

export interface GroupSettings<T> {
  /** The loader; `undefined` from it is an absent value (refused unless absentTtlMs > 0). */
  load: (key: string, ctx: LoadContext) => Promise<Loaded<T> | undefined> | Loaded<T> | undefined
  codec: Codec<T>
  /** Bytes of the main cache and of the hot cache (together maxBytes). */
  mainBytes: number
  hotBytes: number
  /** Peers holding each key, the owner included. */
  replicas: number
  hotThreshold: number
  ttlMs: number
  staleMs: number
  staleIfErrorMs: number
  /** How long expired entries are kept: as long as either grace may still want them. */
  graceMs: number
  loadTimeoutMs: number
  /** How long an absent value (the loader returned undefined) is kept, in ms; 0: absent values are refused. */
  absentTtlMs: number
  maxKeyBytes: number
  /** Origin loads run for peers at once, and how many more may wait (lib/overload.ts). */
  maxPeerLoads: number
  maxQueuedPeerLoads: number
  /** Change events waiting per listener, at most. */
  maxQueuedEvents: number
}

export function groupSettings<T>(name: string, options: GroupOptions<T>): GroupSettings<T> {
  if (typeof name !== 'string' || !GROUP_NAME.test(name)) throw new InvalidGroupError(name, 'group names match [A-Za-z0-9._-]{1,64}')
  if (options === null || typeof options !== 'object')
    throw new InvalidOptionError('options', 'group options are required: { maxBytes, load }')
  knownOptions('GroupOptions', options, GROUP_OPTION_NAMES)
  const absentTtlMs = nonNegative('absentTtlMs', options.absentTtlMs ?? GROUP_DEFAULTS.absentTtlMs)
  // Without a loader every miss is an absent value: a group filled by set() alone (a Keyv store).
  if (options.load === undefined && absentTtlMs === 0)
    throw new InvalidOptionError('load', `group "${name}" needs a load function (or absentTtlMs > 0 for a group filled by set alone)`)
  if (options.load !== undefined && typeof options.load !== 'function')
    throw new InvalidOptionError('load', `group "${name}": load must be a function`)
  const maxBytes = positive('maxBytes', options.maxBytes)
  const ratio = options.hotCacheRatio ?? GROUP_DEFAULTS.hotCacheRatio
  if (!(ratio >= 0 && ratio <= 0.5)) throw new InvalidOptionError('hotCacheRatio', `must be from 0 to 0.5, got ${ratio}`)
  const hotBytes = Math.floor(maxBytes * ratio)
  const staleMs = nonNegative('staleWhileRevalidateMs', options.staleWhileRevalidateMs ?? GROUP_DEFAULTS.staleWhileRevalidateMs)
  const staleIfErrorMs = nonNegative('staleIfErrorMs', options.staleIfErrorMs ?? GROUP_DEFAULTS.staleIfErrorMs)
  return {
    load: options.load ?? noLoader,
    codec: resolveCodec(options.codec),
    mainBytes: maxBytes - hotBytes,
    hotBytes,
    replicas: integer('replicas', options.replicas ?? GROUP_DEFAULTS.replicas, 1, 5),
    // The sketch counts to 255: a higher threshold could never be reached.
    hotThreshold: integer('hotThreshold', options.hotThreshold ?? GROUP_DEFAULTS.hotThreshold, 1, 255),
    ttlMs: nonNegative('ttlMs', options.ttlMs ?? GROUP_DEFAULTS.ttlMs),
    staleMs,
    staleIfErrorMs,
    graceMs: Math.max(staleMs, staleIfErrorMs),
    loadTimeoutMs: integer('loadTimeoutMs', options.loadTimeoutMs ?? GROUP_DEFAULTS.loadTimeoutMs, 0),
    absentTtlMs,
    maxKeyBytes: integer('maxKeyBytes', options.maxKeyBytes ?? GROUP_DEFAULTS.maxKeyBytes, 1, MAX_KEY_BYTES),
    maxPeerLoads: integer('maxPeerLoads', options.maxPeerLoads ?? GROUP_DEFAULTS.maxPeerLoads, 1),
    maxQueuedPeerLoads: integer('maxQueuedPeerLoads', options.maxQueuedPeerLoads ?? GROUP_DEFAULTS.maxQueuedPeerLoads, 0),
    maxQueuedEvents: integer('maxQueuedEvents', options.maxQueuedEvents ?? GROUP_DEFAULTS.maxQueuedEvents, 1),
  }
}

/** The loader of a group filled by set() alone (absentTtlMs > 0): every miss is an absent value. */
export function noLoader(): undefined {
  return undefined
}
