// lib/snapshot.ts and lib/snapshot-format.ts: a group's snapshot read back keeps values, versions
// and expiry; damage (a flipped bit anywhere, a cut anywhere) loses only what it touched and never
// throws after the header; a restore keeps only what this process should hold under its ring and
// never replaces a newer value.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t from 'tap'
import { type Group, Peer, SnapshotError } from '../lib/index.js'
import { stringCodec } from '../lib/codec.js'
import { restoreSnapshot, type SnapshotTarget } from '../lib/snapshot.js'
import { encodeEnd, encodeHeader, encodeRecord, SNAPSHOT_MAGIC } from '../lib/snapshot-format.js'
import { Store } from '../lib/store.js'
import { startGroupCluster } from './helpers/inproc.js'

let port = 40_000
/** A peer alone on its ring (never listening: a restore and a snapshot need no network). */
function lonePeer(t: Tap): Peer {
  const peer = new Peer({ self: `http://127.0.0.1:${port++}` })
  t.teardown(() => peer.close())
  return peer
}
type Tap = { teardown(fn: () => unknown): void; equal(a: unknown, b: unknown, message: string): void }

/** A string group whose origin says how often it was asked: `${key}#${n}`. */
function stringGroup(peer: Peer, name = 'g', maxBytes = 1 << 20) {
  const loads = new Map<string, number>()
  const group = peer.group(name, {
    codec: 'string',
    maxBytes,
    load: async (key) => {
      const n = (loads.get(key) ?? 0) + 1
      loads.set(key, n)
      return `${key}#${n}`
    },
  })
  return { group, loads: () => [...loads.values()].reduce((a, b) => a + b, 0) }
}

/** The snapshot of `group` as one Buffer. */
async function snapshotBytes(t: Tap, group: Group<string>): Promise<Buffer> {
  const sink = new PassThrough()
  const chunks: Buffer[] = []
  sink.on('data', (c: Buffer) => chunks.push(c))
  const result = await group.snapshot(sink)
  const bytes = Buffer.concat(chunks)
  t.equal(result.bytes, bytes.length, 'the result counts every byte written')
  return bytes
}

/**
 * Group "g" as a bare store holding every key (as a lone peer would), emptied before each use: the
 * damage tests restore hundreds of times, and a Store takes long to make (its tombstone LRU).
 */
const bare: SnapshotTarget<string> = {
  group: 'g',
  self: 'http://127.0.0.1:1',
  store: new Store<string>(1 << 20, 1 << 16),
  codec: stringCodec,
  maxKeyBytes: 4096,
  keepsAbsent: false,
  holders: () => [],
  checkKey: () => {},
}
function bareTarget(): SnapshotTarget<string> {
  for (const [key] of [...bare.store.main.entries()]) bare.store.main.delete(key)
  return bare
}

const held = (group: Group<string>, key: string) => group.ownerSide.peek(key)

t.test('round trip: values, versions and expiry come back; entries expired by then are skipped', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`)
  for (const key of keys) await group.get(key)
  await group.set('with-ttl', 'lives an hour', { ttlMs: 3_600_000 })
  await group.set('soon-gone', 'lives 30 ms', { ttlMs: 30 })
  const bytes = await snapshotBytes(t, group)
  await new Promise((r) => setTimeout(r, 60)) // soon-gone has expired before the restore

  const { group: fresh, loads } = stringGroup(lonePeer(t))
  const result = await fresh.restore(Readable.from([bytes]))
  t.match(result, { restored: 301, skipped: 1, damaged: 0, complete: true })
  t.ok(result.createdAt <= Date.now() && result.createdAt > Date.now() - 600_000, 'the header says when the snapshot was taken')
  const same = [...keys, 'with-ttl'].filter((key) => {
    const [a, b] = [held(group, key)!, held(fresh, key)]
    return b !== undefined && a.value === b.value && a.version === b.version && a.expiresAt === b.expiresAt
  })
  t.equal(same.length, keys.length + 1, 'every entry has the same value, version and expiry')
  t.ok(held(fresh, 'with-ttl')!.expiresAt > Date.now(), 'the TTL keeps counting from the original set')
  t.equal(held(fresh, 'soon-gone'), undefined, 'an entry expired since the snapshot is not restored')
  t.equal(await fresh.get('key-7'), 'key-7#1', 'a restored key is a hit')
  t.equal(loads(), 0, 'no origin load for restored keys')
  const after = await fresh.set('key-1', 'newer')
  t.ok(after.version > held(group, 'key-1')!.version, 'the version clock moved past every restored version')
})

t.test('a file written with snapshot() and read with restore()', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'peercache-snap-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { group } = stringGroup(lonePeer(t))
  // Values bigger than one write chunk, so the file is written in many writes.
  for (let i = 0; i < 40; i++) await group.set(`big-${i}`, `${i}`.repeat(10_000))
  const file = path.join(dir, 'g.snap')
  const written = await group.snapshot(createWriteStream(file))
  t.equal(written.entries, 40)
  const { group: fresh } = stringGroup(lonePeer(t))
  const result = await fresh.restore(createReadStream(file, { highWaterMark: 1000 }))
  t.match(result, { restored: 40, damaged: 0, complete: true })
  t.equal(held(fresh, 'big-39')?.value, '39'.repeat(10_000))
})

t.test('a flipped bit in a value loses that record only; the damaged value is never served', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  for (let i = 0; i < 5; i++) await group.set(`k${i}`, `value ${i}`)
  const bytes = await snapshotBytes(t, group)
  const at = bytes.indexOf('value 2')
  bytes.writeUInt8(bytes.readUInt8(at + 6) ^ 0x01, at + 6) // "value 3" in the bytes of k2: a plausible value, caught by the checksum
  const { group: fresh, loads } = stringGroup(lonePeer(t))
  t.match(await fresh.restore(Readable.from([bytes])), { restored: 4, skipped: 0, damaged: 1, complete: true })
  t.equal(held(fresh, 'k2'), undefined, 'the damaged record was dropped')
  t.equal(await fresh.get('k2'), 'k2#1', 'its key loads from the origin')
  t.equal(loads(), 1)
  t.equal(held(fresh, 'k3')?.value, 'value 3', 'the records after it were read')
})

t.test('cut anywhere after the header: the whole records before the cut are kept, never a throw', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  for (let i = 0; i < 6; i++) await group.set(`k${i}`, `value ${i}`)
  const bytes = await snapshotBytes(t, group)
  const header = encodeHeader('g', 0).length
  // Where each record ends: a cut at or after it keeps that record.
  const ends = [0, 1, 2, 3, 4, 5].map((i) => bytes.indexOf(`value ${i}`) + `value ${i}`.length + 4)
  let checked = 0
  for (let cut = header; cut < bytes.length; cut++) {
    const result = await restoreSnapshot(bareTarget(), Readable.from([bytes.subarray(0, cut)]))
    const whole = ends.filter((end) => end <= cut).length
    if (result.restored !== whole || result.complete || result.damaged !== 1) {
      t.fail(`cut at ${cut}: ${JSON.stringify(result)}, expected ${whole} restored`)
      continue
    }
    checked++
  }
  t.equal(checked, bytes.length - header, 'every cut: restored = whole records before it, damaged 1, not complete')
})

t.test('a flipped bit anywhere after the header never throws and never restores a wrong value', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  for (let i = 0; i < 4; i++) await group.set(`k${i}`, `value ${i}`)
  const bytes = await snapshotBytes(t, group)
  const header = encodeHeader('g', 0).length
  let wrong = 0
  for (let at = header; at < bytes.length; at++) {
    const damaged = Buffer.from(bytes)
    damaged.writeUInt8(damaged.readUInt8(at) ^ 0x10, at)
    const target = bareTarget()
    const result = await restoreSnapshot(target, Readable.from([damaged]))
    for (let i = 0; i < 4; i++) {
      const value = target.store.main.get(`k${i}`)?.value
      if (value !== undefined && value !== `value ${i}`) wrong++
    }
    if (result.damaged < 1) t.fail(`a flip at ${at} went unnoticed: ${JSON.stringify(result)}`)
  }
  t.equal(wrong, 0, 'no damaged value was restored')
})

t.test('an unreadable header rejects with SnapshotError and restores nothing', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  await group.set('k', 'v')
  const good = await snapshotBytes(t, group)
  const otherFormat = Buffer.from(good)
  otherFormat.writeUInt16BE(99, SNAPSHOT_MAGIC.length)
  const flipped = Buffer.from(good)
  flipped.writeUInt8(flipped.readUInt8(SNAPSHOT_MAGIC.length + 4) ^ 1, SNAPSHOT_MAGIC.length + 4) // in the group name: the header checksum fails
  const cases: [string, Buffer, RegExp][] = [
    ['empty input', Buffer.alloc(0), /ends before the header/],
    ['not a snapshot', Buffer.from('{"k":"v"}\n'), /bad magic/],
    ['cut inside the header', good.subarray(0, 14), /ends before the header/],
    ['another format version', otherFormat, /format version 99/],
    ['a damaged header', flipped, /header checksum/],
    ['a snapshot of another group', Buffer.concat([encodeHeader('other', Date.now()), encodeEnd(0)]), /group "other"/],
  ]
  for (const [what, bytes, message] of cases) {
    const { group: fresh } = stringGroup(lonePeer(t))
    await t.rejects(
      fresh.restore(Readable.from([bytes])),
      { name: 'SnapshotError', code: 'PEERCACHE_ERR_SNAPSHOT', group: 'g', message },
      what,
    )
    t.equal(fresh.stats().main.items, 0, `${what}: nothing restored`)
  }
  const { group: fresh } = stringGroup(lonePeer(t))
  const err = await fresh.restore(Readable.from(['text'])).catch((e) => e)
  t.ok(err instanceof SnapshotError, 'a stream of text, not bytes, is refused the same way')
})

t.test('records the group cannot take are skipped, the reading goes on', async (t) => {
  const now = Date.now()
  const version = now * 1000
  const records = [
    { key: 'expired', bytes: Buffer.from('x'), version, expiresAt: now - 1000 },
    { key: 'huge', bytes: Buffer.alloc(70_000), version, expiresAt: 0 }, // larger than the group's cache
    { key: 'x'.repeat(5000), bytes: Buffer.from('x'), version, expiresAt: 0 }, // over maxKeyBytes
    { key: 'future', bytes: Buffer.from('x'), version: (now + 3_600_000) * 1000, expiresAt: 0 }, // would poison the clock
    { key: 'ok', bytes: Buffer.from('fine'), version, expiresAt: 0 },
  ]
  const bytes = Buffer.concat([encodeHeader('g', now), ...records.map(encodeRecord), encodeEnd(records.length)])
  const { group } = stringGroup(lonePeer(t), 'g', 64 * 1024)
  t.match(await group.restore(Readable.from([bytes])), { restored: 1, skipped: 4, damaged: 0, complete: true })
  t.equal(held(group, 'ok')?.value, 'fine')
  t.equal(group.stats().main.items + group.stats().hot.items, 1)
})

t.test('a restore never replaces a newer value, nor brings back a removed one', async (t) => {
  const { group } = stringGroup(lonePeer(t))
  await group.set('changed', 'old')
  await group.set('removed', 'old')
  await group.set('same', 'kept')
  const bytes = await snapshotBytes(t, group)
  await group.set('changed', 'new')
  await group.remove('removed')
  const result = await group.restore(Readable.from([bytes]))
  t.match(result, { restored: 1, skipped: 2, damaged: 0, complete: true }, 'the same version is stored again; older ones are skipped')
  t.equal(held(group, 'changed')?.value, 'new', 'the newer value stays')
  t.equal(held(group, 'removed'), undefined, 'the removed key stays removed')
  t.equal(held(group, 'same')?.value, 'kept')
})

t.test('restore keeps keys this process owns or replicates; others only as hot copies, within the hot budget', async (t) => {
  // The snapshot of a lone peer holds every key; restored into peer 0 of a cluster of 3, one with
  // a hot budget of 1/8 of 256 KiB: about 57 values of 400 bytes, fewer than the ~100 keys others own.
  const { group: lone } = stringGroup(lonePeer(t))
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`)
  for (const key of keys) await lone.set(key, `value of ${key}`.padEnd(400, '.'))
  const bytes = await snapshotBytes(t, lone)
  const c = await startGroupCluster(t, 3, { maxBytes: 256 * 1024, hotCacheRatio: 0.125 })
  const mine = keys.filter((k) => c.roles(k).owner === 0 || c.roles(k).replica === 0)
  const g = c.groups[0]!
  const result = await g.restore(Readable.from([bytes]))
  const s = g.stats()
  t.equal(s.main.items, mine.length, 'every key peer 0 owns or replicates is in its main cache')
  t.ok(
    mine.every((k) => g.ownerSide.peek(k)?.value === `value of ${k}`.padEnd(400, '.')),
    'with its value',
  )
  t.ok(
    s.hot.items > 0 && s.hot.items < keys.length - mine.length,
    `some others became hot copies, not all (${s.hot.items} of ${keys.length - mine.length})`,
  )
  t.ok(s.hot.bytes <= s.hot.maxBytes, 'within the hot budget')
  t.equal(s.hot.evictions, 0, 'without evicting a hot copy')
  t.equal(result.restored, s.main.items + s.hot.items)
  t.equal(result.restored + result.skipped, keys.length, 'every record restored or skipped')
  t.equal(c.origin.count(), 0)
})

t.test('absent values come back absent; a group without absentTtlMs skips them', async (t) => {
  const peer = lonePeer(t)
  let loads = 0
  const group = peer.group('g', {
    codec: 'string',
    maxBytes: 1 << 20,
    absentTtlMs: 3_600_000,
    load: async (key) => {
      loads++
      return key.startsWith('missing') ? undefined : `value of ${key}`
    },
  })
  for (const key of ['missing-1', 'missing-2', 'here']) await group.get(key)
  const sink = new PassThrough()
  const chunks: Buffer[] = []
  sink.on('data', (c: Buffer) => chunks.push(c))
  await group.snapshot(sink)
  const bytes = Buffer.concat(chunks)

  const fresh = lonePeer(t).group('g', { codec: 'string', maxBytes: 1 << 20, absentTtlMs: 3_600_000 })
  t.match(await fresh.restore(Readable.from([bytes])), { restored: 3, skipped: 0, damaged: 0, complete: true })
  t.equal(fresh.ownerSide.peek('missing-1')?.absent, true, 'an absent value, not an empty string')
  t.equal(await fresh.get('missing-2'), undefined)
  t.equal(await fresh.get('here'), 'value of here')
  t.equal(loads, 3, 'no load for restored keys')

  const { group: plain } = stringGroup(lonePeer(t))
  t.match(await plain.restore(Readable.from([bytes])), { restored: 1, skipped: 2, damaged: 0, complete: true })
  t.equal(plain.ownerSide.peek('missing-1'), undefined, 'a group without absent values does not take them')
})
