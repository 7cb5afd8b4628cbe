// Mirrors lib/pending-get.ts: how an answer frame (encoded and parsed as on the wire) settles a waiting get: values, misses, absents, each error reason's typed error, implausible versions, `retry` copies and their limit, failSlow's two verdicts; a get settles once.
import t from 'tap'
import { InvalidValueError, LoadError, LoadTimeoutError, PeerUnavailableError } from '../lib/errors.js'
import { encodeFrame, type Frame, FrameParser, type FrameStatus } from '../lib/frames.js'
import { failSlow, nextRequestNumber, type Queued, retried, settle, settleFrame } from '../lib/pending-get.js'
import type { WireEntry } from '../lib/protocol.js'

const PEER = 'http://peer-b.test'
const AHEAD_MS = 1000
/** µs per ms: versions count µs. */
const US = 1000

/** A waiting get and what became of it. */
function waiting(key = 'alice') {
  const outcome: { value?: WireEntry | undefined; error?: unknown; calls: number } = { calls: 0 }
  const q: Queued = {
    group: 'users',
    key,
    peek: false,
    settled: false,
    trace: undefined,
    retries: 0,
    resolve: (v) => {
      outcome.calls++
      outcome.value = v
    },
    reject: (e) => {
      outcome.calls++
      outcome.error = e
    },
  }
  return { q, outcome }
}

/** One frame as it arrives: encoded, then parsed. */
function frame(status: FrameStatus, payload = '', expiresAt = 0, version = 0): Frame {
  const [f, ...rest] = new FrameParser().push(Buffer.concat(encodeFrame(3, status, Buffer.from(payload), expiresAt, version)))
  if (f === undefined || rest.length > 0) throw new Error('one frame expected')
  return f
}

t.test('nextRequestNumber counts up by one per call', async (t) => {
  const a = nextRequestNumber()
  const b = nextRequestNumber()
  t.ok(a >= 1)
  t.equal(b, a + 1)
})

t.test('settle: once only; the first outcome stays', async (t) => {
  const { q, outcome } = waiting()
  const v = { bytes: Buffer.from('v'), expiresAt: 0, version: 1 }
  settle(q, v)
  settle(q, undefined, new Error('later'))
  settle(q, undefined)
  t.equal(outcome.calls, 1)
  t.equal(outcome.value, v)
  t.equal(outcome.error, undefined)
  t.ok(q.settled)
  const other = waiting()
  settle(other.q, undefined, new Error('first'))
  settle(other.q, v)
  t.match(other.outcome, { calls: 1, error: { message: 'first' }, value: undefined })
})

t.test('settleFrame: a value, an absent value and a miss', async (t) => {
  const now = Date.now() * US
  const ok = waiting()
  settleFrame(PEER, ok.q, frame('ok', 'hello', 1234, now), AHEAD_MS)
  t.same(ok.outcome.value, { bytes: Buffer.from('hello'), expiresAt: 1234, version: now })
  t.notOk(ok.outcome.value?.absent, 'a value is not absent')
  const absent = waiting()
  settleFrame(PEER, absent.q, frame('absent', '', 99, now), AHEAD_MS)
  t.same(absent.outcome.value, { bytes: Buffer.alloc(0), expiresAt: 99, version: now, absent: true })
  const miss = waiting()
  settleFrame(PEER, miss.q, frame('miss'), AHEAD_MS)
  t.match(miss.outcome, { calls: 1, value: undefined, error: undefined }, 'a peek that missed: undefined, no error')
})

t.test('settleFrame: the origin’s errors are final and name group, key and peer', async (t) => {
  const load = waiting()
  settleFrame(PEER, load.q, frame('load', 'db down'), AHEAD_MS)
  t.type(load.outcome.error, LoadError)
  t.notOk(load.outcome.error instanceof LoadTimeoutError)
  t.match(load.outcome.error, { code: 'PEERCACHE_ERR_LOAD', group: 'users', key: 'alice', peer: PEER, originMessage: 'db down' })
  const slow = waiting()
  settleFrame(PEER, slow.q, frame('load-timeout', 'over 5 s'), AHEAD_MS)
  t.match(slow.outcome.error, { code: 'PEERCACHE_ERR_LOAD_TIMEOUT', group: 'users', key: 'alice', peer: PEER, originMessage: 'over 5 s' })
  const bad = waiting()
  settleFrame(PEER, bad.q, frame('invalid-value', 'not bytes'), AHEAD_MS)
  t.type(bad.outcome.error, InvalidValueError)
  t.match(bad.outcome.error, { code: 'PEERCACHE_ERR_INVALID_VALUE', group: 'users', key: 'alice', reason: `not bytes (at ${PEER})` })
})

t.test('settleFrame: every other status is the peer unavailable, with that status as its reason', async (t) => {
  // The error statuses a frame can carry (frames.ts FRAME_STATUS) other than the origin's three.
  const statuses: FrameStatus[] = ['unknown-group', 'bad-request', 'internal', 'closing', 'overloaded']
  for (const status of statuses) {
    const { q, outcome } = waiting()
    settleFrame(PEER, q, frame(status, 'why'), AHEAD_MS)
    t.type(outcome.error, PeerUnavailableError, status)
    t.match(outcome.error, { peer: PEER, reason: status, message: `peercache: peer ${PEER} unavailable: ${status}: why` })
  }
})

t.test('settleFrame: a value or absent with an implausible version is refused (it would poison the clock)', async (t) => {
  const tooFar = (Date.now() + 60 * 60_000) * US
  for (const status of ['ok', 'absent'] as const) {
    for (const version of [tooFar, -1, 1.5, Number.MAX_VALUE, Number.NaN]) {
      const { q, outcome } = waiting()
      settleFrame(PEER, q, frame(status, 'v', 0, version), AHEAD_MS)
      t.type(outcome.error, PeerUnavailableError, `${status} at version ${version}`)
      t.match(outcome.error, { message: /implausible version/, reason: undefined })
      t.equal(outcome.value, undefined)
    }
  }
  const { q, outcome } = waiting()
  settleFrame(PEER, q, frame('ok', 'v', 0, 0), AHEAD_MS)
  t.equal(outcome.value?.version, 0, 'version 0 (a value never written with one) is believed')
})

t.test('settleFrame on a get already settled changes nothing', async (t) => {
  const { q, outcome } = waiting()
  settle(q, undefined, new Error('timed out first'))
  settleFrame(PEER, q, frame('ok', 'late'), AHEAD_MS)
  t.match(outcome, { calls: 1, value: undefined, error: { message: 'timed out first' } })
})

t.test('retried: a copy to ask again, with the same caller, until the eighth retry; then the peer is given up', async (t) => {
  const { q, outcome } = waiting()
  let current: Queued | undefined = q
  const copies: Queued[] = []
  for (let i = 0; i < 20 && current !== undefined; i++) {
    const again: Queued | undefined = retried(PEER, current)
    t.ok(current.settled, `try ${i}: the copy asked for is settled (its batch forgets it)`)
    if (again !== undefined) copies.push(again)
    current = again
  }
  t.equal(copies.length, 8, 'eight copies, then none')
  t.same(
    copies.map((c) => c.retries),
    [1, 2, 3, 4, 5, 6, 7, 8],
  )
  t.ok(
    copies.every((c) => c.group === 'users' && c.key === 'alice' && c.resolve === q.resolve),
    'each copy is the same key for the same caller',
  )
  t.equal(outcome.calls, 1, 'the caller was settled once')
  t.type(outcome.error, PeerUnavailableError)
  t.match(outcome.error, { peer: PEER, message: /still over the batch budget after 8 tries/ })
})

t.test('retried: a copy answered with a value settles the original caller', async (t) => {
  const { q, outcome } = waiting()
  const again = retried(PEER, q)
  t.ok(again)
  t.notOk(again?.settled)
  settleFrame(PEER, again!, frame('ok', 'second time'), AHEAD_MS)
  t.equal(outcome.value?.bytes.toString(), 'second time')
  t.equal(outcome.calls, 1)
})

t.test(
  'failSlow: an alive peer with a slow origin gives LoadTimeoutError; a silent peer, PeerUnavailableError; settled gets stay',
  async (t) => {
    const done = waiting('done')
    settle(done.q, { bytes: Buffer.from('x'), expiresAt: 0, version: 0 })
    const a = waiting('a')
    const b = waiting('b')
    failSlow(PEER, new Set([done.q, a.q, b.q]), true, 1500)
    t.equal(done.outcome.calls, 1, 'the settled get kept its value')
    t.equal(done.outcome.error, undefined)
    for (const [key, w] of [
      ['a', a],
      ['b', b],
    ] as const) {
      t.type(w.outcome.error, LoadTimeoutError)
      t.match(w.outcome.error, { group: 'users', key, peer: PEER, originMessage: 'no value within fetchTimeoutMs (1500 ms)' })
    }
    const silent = waiting('c')
    function* items() {
      yield silent.q
    }
    failSlow(PEER, items(), false, 1500)
    t.type(silent.outcome.error, PeerUnavailableError)
    t.notOk(silent.outcome.error instanceof LoadError, 'not the origin’s fault: the key may go to a replica')
    t.match(silent.outcome.error, { peer: PEER, reason: undefined, message: /no value within fetchTimeoutMs \(1500 ms\)/ })
  },
)
