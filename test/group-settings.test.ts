// Mirrors lib/group-settings.ts: defaults filled from GROUP_DEFAULTS, derived sizes, bounds of each option and which option an error names.
import t from 'tap'
import { bytesCodec, jsonCodec } from '../lib/codec.js'
import { GROUP_DEFAULTS } from '../lib/defaults.js'
import { InvalidGroupError, InvalidOptionError } from '../lib/errors.js'
import { groupSettings, noLoader } from '../lib/group-settings.js'
import type { GroupOptions } from '../lib/options.js'
import { MAX_KEY_BYTES } from '../lib/protocol.js'

const load = () => ({ value: Buffer.from('v') })

t.test('only maxBytes and load given: every other setting is its GROUP_DEFAULTS value', async (t) => {
  const s = groupSettings('g', { maxBytes: 1000, load })
  t.equal(s.load, load, 'the loader as given')
  t.equal(s.codec, bytesCodec, 'bytes by default')
  t.equal(s.hotBytes, Math.floor(1000 * GROUP_DEFAULTS.hotCacheRatio))
  t.equal(s.mainBytes + s.hotBytes, 1000, 'main and hot caches share maxBytes')
  t.same(
    [s.replicas, s.hotThreshold, s.ttlMs, s.staleMs, s.staleIfErrorMs, s.graceMs, s.loadTimeoutMs, s.absentTtlMs],
    [GROUP_DEFAULTS.replicas, GROUP_DEFAULTS.hotThreshold, GROUP_DEFAULTS.ttlMs, 0, 0, 0, GROUP_DEFAULTS.loadTimeoutMs, 0],
  )
  t.same(
    [s.maxKeyBytes, s.maxPeerLoads, s.maxQueuedPeerLoads, s.maxQueuedEvents],
    [GROUP_DEFAULTS.maxKeyBytes, GROUP_DEFAULTS.maxPeerLoads, GROUP_DEFAULTS.maxQueuedPeerLoads, GROUP_DEFAULTS.maxQueuedEvents],
  )
})

t.test('given values are kept; an explicit undefined keeps the default', async (t) => {
  const s = groupSettings<unknown>('g', {
    maxBytes: 999,
    load,
    codec: 'json',
    hotCacheRatio: 0.5,
    replicas: 5,
    hotThreshold: 255,
    ttlMs: 0.5,
    loadTimeoutMs: 0,
    maxKeyBytes: MAX_KEY_BYTES,
    maxQueuedPeerLoads: 0,
    maxPeerLoads: 1,
    maxQueuedEvents: 1,
    staleIfErrorMs: undefined,
  } as GroupOptions<unknown>)
  t.equal(s.codec, jsonCodec)
  t.equal(s.hotBytes, 499, 'hot bytes are rounded down')
  t.equal(s.mainBytes, 500, 'the main cache gets the rest')
  t.same([s.replicas, s.hotThreshold, s.ttlMs, s.loadTimeoutMs], [5, 255, 0.5, 0], 'the upper and lower bounds are accepted')
  t.same([s.maxKeyBytes, s.maxQueuedPeerLoads, s.maxPeerLoads, s.maxQueuedEvents], [MAX_KEY_BYTES, 0, 1, 1])
  t.equal(s.staleIfErrorMs, GROUP_DEFAULTS.staleIfErrorMs)
  t.equal(groupSettings('g', { maxBytes: 1000, load, hotCacheRatio: 0 }).hotBytes, 0, 'ratio 0: no hot cache')
})

t.test('graceMs keeps expired entries for the longer of the two graces', async (t) => {
  const a = groupSettings('g', { maxBytes: 1000, load, staleWhileRevalidateMs: 300, staleIfErrorMs: 7000 })
  t.same([a.staleMs, a.staleIfErrorMs, a.graceMs], [300, 7000, 7000])
  const b = groupSettings('g', { maxBytes: 1000, load, staleWhileRevalidateMs: 9000, staleIfErrorMs: 10 })
  t.equal(b.graceMs, 9000)
})

t.test('without a loader: allowed only with absentTtlMs > 0, and every miss is absent', async (t) => {
  const s = groupSettings('kv', { maxBytes: 1000, absentTtlMs: 60_000 })
  t.equal(s.load, noLoader)
  t.equal(s.absentTtlMs, 60_000)
  t.equal(noLoader(), undefined)
  const err = t.throws(() => groupSettings('kv', { maxBytes: 1000, absentTtlMs: 0 } as never), InvalidOptionError) as InvalidOptionError
  t.equal(err.option, 'load')
  t.match(err.message, /group "kv" needs a load function/, 'names the group')
})

t.test('each bad option throws InvalidOptionError naming that option', async (t) => {
  const bad: [string, Record<string, unknown>][] = [
    ['maxBytes', { maxBytes: undefined }],
    ['load', { load: 42 }],
    ['hotCacheRatio', { hotCacheRatio: Number.NaN }],
    ['hotCacheRatio', { hotCacheRatio: 0.51 }],
    ['replicas', { replicas: 0 }],
    ['replicas', { replicas: 6 }],
    ['hotThreshold', { hotThreshold: 256 }],
    ['ttlMs', { ttlMs: Number.POSITIVE_INFINITY }],
    ['staleWhileRevalidateMs', { staleWhileRevalidateMs: -1 }],
    ['staleIfErrorMs', { staleIfErrorMs: '5' }],
    ['loadTimeoutMs', { loadTimeoutMs: 10.5 }],
    ['loadTimeoutMs', { loadTimeoutMs: -1 }],
    ['absentTtlMs', { absentTtlMs: Number.NaN }],
    ['maxKeyBytes', { maxKeyBytes: MAX_KEY_BYTES + 1 }],
    ['maxPeerLoads', { maxPeerLoads: 0 }],
    ['maxQueuedPeerLoads', { maxQueuedPeerLoads: -1 }],
    ['maxQueuedEvents', { maxQueuedEvents: 0 }],
    ['codec', { codec: 'yaml' }],
    ['loadFn', { loadFn: load }],
  ]
  for (const [option, extra] of bad) {
    const err = t.throws(() => groupSettings('g', { maxBytes: 1000, load, ...extra } as never), InvalidOptionError) as InvalidOptionError
    t.equal(err.option, option, `${JSON.stringify(extra)} names ${option}`)
  }
})

t.test('the name is checked first, then the options object', async (t) => {
  for (const name of ['', 'a b', 'x'.repeat(65), null]) {
    const err = t.throws(() => groupSettings(name as string, null as never), InvalidGroupError) as InvalidGroupError
    t.equal(err.code, 'PEERCACHE_ERR_INVALID_GROUP', `${JSON.stringify(name)}: a bad name wins over bad options`)
  }
  for (const options of [null, undefined, 'maxBytes=1', 7]) {
    const err = t.throws(() => groupSettings('g', options as never), InvalidOptionError) as InvalidOptionError
    t.equal(err.option, 'options', `${String(options)}: the options object itself is named`)
  }
})
