// Mirrors lib/key-answer.ts: one key asked of this peer (a real Peer's group) answered as a frame: at once from the cache or an error, a promise while it loads; the signal is asked only for a wait; valueFrame's two statuses.
import t from 'tap'
import { type Frame, FrameParser } from '../lib/frames.js'
import { Peer } from '../lib/index.js'
import { answerKey, EMPTY, type KeyServing, valueFrame } from '../lib/key-answer.js'
import type { WireEntry } from '../lib/protocol.js'
import type { TapTest } from './helpers/tap.js'

/** A solo peer (it owns every key) serving group 'g': `load` decides each value; what the peer serves to others. */
function serving(t: TapTest, load: (key: string) => Buffer | undefined | Promise<Buffer | undefined>) {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  const loads: string[] = []
  const group = peer.group('g', {
    maxBytes: 1 << 20,
    absentTtlMs: 60_000,
    load: (key: string) => {
      loads.push(key)
      return load(key)
    },
  })
  const o: KeyServing = { group: (name) => (name === 'g' ? group.ownerSide : undefined) }
  let signals = 0
  const signal = () => {
    signals++
    return new AbortController().signal
  }
  return { group, o, loads, signal, signals: () => signals }
}

/** The one frame of an answer. */
function only(parts: Buffer[]): Frame {
  const frames = new FrameParser().push(Buffer.concat(parts))
  if (frames.length !== 1) throw new Error(`${frames.length} frames, one expected`)
  return frames[0]!
}

async function answered(a: Buffer[] | Promise<Buffer[]>): Promise<Frame> {
  return only(await a)
}

t.test('a group this peer does not serve: unknown-group at once, naming it', async (t) => {
  const s = serving(t, (key) => Buffer.from(key))
  const a = answerKey(s.o, 5, { group: 'nope', key: 'k' }, s.signal, valueFrame)
  t.ok(Array.isArray(a), 'synchronous')
  t.match(await answered(a), { index: 5, status: 'unknown-group' })
  t.equal((await answered(a)).payload.toString(), 'no group "nope" on this peer')
  t.same(s.loads, [], 'nothing loaded')
})

t.test('a key not cached: a promise of its value frame, the signal asked once; then at once from the cache', async (t) => {
  const s = serving(t, (key) => Buffer.from(`v:${key}`))
  const first = answerKey(s.o, 0, { group: 'g', key: 'alice' }, s.signal, valueFrame)
  t.type(first, Promise, 'a load: a promise')
  t.equal(s.signals(), 1, 'a wait: the signal was asked for')
  const f = await answered(first)
  t.match(f, { index: 0, status: 'ok' })
  t.equal(f.payload.toString(), 'v:alice')
  t.ok(f.version > 0, 'with the owner’s version')
  const again = answerKey(s.o, 7, { group: 'g', key: 'alice' }, s.signal, valueFrame)
  t.ok(Array.isArray(again), 'cached: synchronous')
  t.match(await answered(again), { index: 7, status: 'ok', version: f.version })
  t.equal(s.signals(), 1, 'no wait, no signal')
  t.same(s.loads, ['alice'], 'one load')
})

t.test('a peek never loads: miss at once, then the cached value once a get loaded it', async (t) => {
  const s = serving(t, (key) => Buffer.from(`v:${key}`))
  const miss = answerKey(s.o, 1, { group: 'g', key: 'bob', peek: true }, s.signal, valueFrame)
  t.ok(Array.isArray(miss))
  const f = await answered(miss)
  t.match(f, { index: 1, status: 'miss' })
  t.equal(f.payload.length, 0)
  t.same(s.loads, [])
  await s.group.get('bob')
  const hit = await answered(answerKey(s.o, 2, { group: 'g', key: 'bob', peek: true }, s.signal, valueFrame))
  t.match(hit, { index: 2, status: 'ok' })
  t.equal(hit.payload.toString(), 'v:bob')
  t.equal(s.signals(), 0)
})

t.test('the origin failing: a load frame with its message (never a stack)', async (t) => {
  const s = serving(t, () => {
    throw new Error('db down')
  })
  const f = await answered(answerKey(s.o, 3, { group: 'g', key: 'carol' }, s.signal, valueFrame))
  t.match(f, { index: 3, status: 'load' })
  t.equal(f.payload.toString(), 'db down')
})

t.test('a bad key: bad-request at once, the reason in the payload, nothing loaded', async (t) => {
  const s = serving(t, (key) => Buffer.from(key))
  for (const key of ['', '\ud800 lone surrogate', 'k'.repeat(5000)]) {
    const a = answerKey(s.o, 4, { group: 'g', key }, s.signal, valueFrame)
    t.ok(Array.isArray(a), 'synchronous: the check throws before any wait')
    const f = await answered(a)
    t.match(f, { index: 4, status: 'bad-request' })
    t.match(f.payload.toString(), /invalid key/)
  }
  t.same(s.loads, [])
  t.equal(s.signals(), 0)
})

t.test('an absent value (loader gave undefined) is an absent frame, cached or loaded', async (t) => {
  const s = serving(t, () => undefined)
  const loaded = await answered(answerKey(s.o, 0, { group: 'g', key: 'gone' }, s.signal, valueFrame))
  t.match(loaded, { status: 'absent' })
  t.equal(loaded.payload.length, 0)
  t.ok(loaded.expiresAt > Date.now(), 'with its expiry (absentTtlMs)')
  const cached = answerKey(s.o, 1, { group: 'g', key: 'gone' }, s.signal, valueFrame)
  t.ok(Array.isArray(cached))
  t.match(await answered(cached), { status: 'absent', expiresAt: loaded.expiresAt, version: loaded.version })
})

t.test('`value` decides the frame of a value (a batch answers retry past its budget), for cached and loaded keys', async (t) => {
  const s = serving(t, (key) => Buffer.from(key))
  const seen: [number, string][] = []
  const retry = (index: number, e: WireEntry) => {
    seen.push([index, e.bytes.toString()])
    return [Buffer.from(`custom ${index}`)]
  }
  t.same(await answerKey(s.o, 9, { group: 'g', key: 'x' }, s.signal, retry), [Buffer.from('custom 9')])
  t.same(await answerKey(s.o, 10, { group: 'g', key: 'x' }, s.signal, retry), [Buffer.from('custom 10')])
  t.same(seen, [
    [9, 'x'],
    [10, 'x'],
  ])
  const miss = await answered(answerKey(s.o, 11, { group: 'g', key: 'never', peek: true }, s.signal, retry))
  t.equal(miss.status, 'miss', 'a miss is not a value: `value` is not asked')
  t.equal(seen.length, 2)
})

t.test('the wait for a load is taken off its flight when the signal aborts: an error frame, the load goes on for others', async (t) => {
  let release: (() => void) | undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  let started: (() => void) | undefined
  const loading = new Promise<void>((resolve) => (started = resolve))
  const s = serving(t, async (key) => {
    started!()
    await held
    return Buffer.from(key)
  })
  // This process's own get starts the load and stays to the end (no signal).
  const other = s.group.get('slow')
  await loading
  const ac = new AbortController()
  const waiting = answerKey(s.o, 0, { group: 'g', key: 'slow' }, () => ac.signal, valueFrame)
  t.type(waiting, Promise, 'the peer’s get joins the load')
  ac.abort()
  const f = await answered(waiting)
  t.equal(f.status, 'internal', `the aborted wait answers an error at once (${f.status}: ${f.payload.toString()})`)
  release!()
  t.equal(String(await other), 'slow', 'the load itself went on for the other waiter')
  t.same(s.loads, ['slow'], 'one load: the peer’s get joined it, and leaving did not end it')
})

t.test('valueFrame: ok or absent, with expiry and version', async (t) => {
  const ok = only(valueFrame(2, { bytes: Buffer.from('v'), expiresAt: 123, version: 456 }))
  t.match(ok, { index: 2, status: 'ok', expiresAt: 123, version: 456 })
  t.equal(ok.payload.toString(), 'v')
  const absent = only(valueFrame(3, { bytes: EMPTY, expiresAt: 9, version: 8, absent: true }))
  t.match(absent, { index: 3, status: 'absent', expiresAt: 9, version: 8 })
  t.equal(EMPTY.length, 0)
})
