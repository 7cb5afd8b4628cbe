// Mirrors lib/frame-writer.ts: answer frames written to a real TCP socket arrive whole and in order; small pieces are joined, large values passed as they are; a full socket holds frames back until its drain (or until the budget); heartbeats only when nothing else went out; a destroyed sink is left alone.
import t from 'tap'
import type net from 'node:net'
import { encodeFrame, FrameParser, HEARTBEAT_INDEX } from '../lib/frames.js'
import { type FrameSink, FrameWriter } from '../lib/frame-writer.js'
import { settledWithin } from './helpers/bound.js'
import { readToEnd, socketPair } from './helpers/socket-pair.js'
import type { TapTest } from './helpers/tap.js'

const BOUND_MS = 10_000
const KiB = 1024

/** A real socket seen through the sink interface, noting the size of each write it is given. */
function recording(socket: net.Socket): { sink: FrameSink; writes: number[] } {
  const writes: number[] = []
  const sink: FrameSink = {
    get destroyed() {
      return socket.destroyed
    },
    get writableLength() {
      return socket.writableLength
    },
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
    write: (chunk) => {
      writes.push(chunk.length)
      return socket.write(chunk)
    },
    end: () => socket.end(),
    once: (event, listener) => socket.once(event, listener),
  }
  return { sink, writes }
}

/** Frame i carries `sizes[i]` bytes, each byte i. */
function frames(sizes: readonly number[], from = 0): Buffer[] {
  return sizes.flatMap((n, i) => encodeFrame(from + i, 'ok', Buffer.alloc(n, from + i), 0, from + i))
}

function check(t: TapTest, received: Buffer, sizes: readonly number[]) {
  const got = new FrameParser().push(received)
  t.same(
    got.map((f) => [f.index, f.payload.length]),
    sizes.map((n, i) => [i, n]),
    'every frame whole, in order',
  )
  t.ok(
    got.every((f) => f.payload.every((b) => b === (f.index & 0xff))),
    'payloads intact',
  )
}

t.test('frames arrive whole and in order, and end=true ends the connection', async (t) => {
  const { writer, reader } = await socketPair(t)
  const received = readToEnd(reader)
  const out = new FrameWriter(writer)
  const sizes = [0, 10, 100 * KiB, 3, 5000, 1]
  out.write(frames(sizes.slice(0, 3)), false)
  out.write(frames(sizes.slice(3), 3), true)
  const bytes = await settledWithin(received, BOUND_MS)
  t.not(bytes, 'hung', 'the connection ended')
  if (bytes !== 'hung') check(t, bytes, sizes)
})

t.test('one writev per flush: small pieces joined into one buffer, values of 4 KiB or more passed as they are', async (t) => {
  const { writer, reader } = await socketPair(t)
  const received = readToEnd(reader)
  const { sink, writes } = recording(writer)
  const out = new FrameWriter(sink)
  // headers are 25 bytes: [25+10+25] joined, the 4096 value alone, [25+10] joined
  out.write(frames([10, 4096, 10]), true)
  t.same(writes, [25 + 10 + 25, 4096, 25 + 10])
  const bytes = await settledWithin(received, BOUND_MS)
  if (bytes !== 'hung') check(t, bytes, [10, 4096, 10])
  else t.fail('the connection did not end')
})

t.test('a full socket: frames wait here (not in the socket) until its drain, then go, and `drained` is called', async (t) => {
  const { writer, reader } = await socketPair(t)
  const { sink, writes } = recording(writer)
  let drained = 0
  let onDrained: (() => void) | undefined
  const drainedOnce = new Promise<void>((resolve) => (onDrained = resolve))
  const out = new FrameWriter(sink, () => {
    drained++
    onDrained?.()
  })
  // 64 KiB in one corked write is past the socket's highWaterMark (16 KiB): full at once.
  out.write(frames([64 * KiB]), false)
  t.ok(out.full, 'full after a write past the highWaterMark')
  const before = writes.length
  out.write(frames([10, 20]), false)
  out.write(frames([30], 2), true)
  t.equal(writes.length, before, 'nothing more given to the socket while it is full')
  t.ok(out.wroteSince(), 'what waits counts as written')
  const received = readToEnd(reader) // the reader reads: the socket drains
  t.not(await settledWithin(drainedOnce, BOUND_MS), 'hung', 'drained was called')
  const bytes = await settledWithin(received, BOUND_MS)
  t.equal(drained, 1)
  t.notOk(out.full, 'not full after the drain')
  if (bytes !== 'hung') {
    const got = new FrameParser().push(bytes)
    t.same(
      got.map((f) => [f.index, f.payload.length]),
      [
        [0, 64 * KiB],
        [0, 10],
        [1, 20],
        [2, 30],
      ],
      'in the order written, ended after the last',
    )
  } else t.fail('the connection did not end')
})

t.test('a budget above the highWaterMark: a burst goes in one writev until the socket holds the budget', async (t) => {
  const { writer, reader } = await socketPair(t)
  const { sink, writes } = recording(writer)
  const drainedOnce = new Promise<void>((resolve) => {
    const out = new FrameWriter(sink, resolve, 256 * KiB)
    out.write(frames([64 * KiB]), false)
    t.notOk(out.full, '64 KiB is within a 256 KiB budget, though past the highWaterMark')
    out.write(frames(Array(8).fill(64 * KiB), 1), true)
    t.ok(out.full, 'past the budget: full')
    t.ok(writer.writableLength >= 256 * KiB, 'the socket holds the budget')
    t.ok(writer.writableLength < 256 * KiB + 64 * KiB + 2 * 25, 'and not much more: the rest waits here')
    t.ok(writes.length < 2 * 9, 'not every value went to the socket')
  })
  const received = readToEnd(reader)
  t.not(await settledWithin(drainedOnce, BOUND_MS), 'hung')
  const bytes = await settledWithin(received, BOUND_MS)
  if (bytes !== 'hung') check(t, bytes, Array(9).fill(64 * KiB))
  else t.fail('the connection did not end')
})

t.test('beat: a heartbeat frame only when nothing was written since the last call', async (t) => {
  const { writer, reader } = await socketPair(t)
  const received = readToEnd(reader)
  const out = new FrameWriter(writer)
  t.notOk(out.wroteSince(), 'a fresh writer wrote nothing')
  out.write(frames([5]), false)
  out.beat() // a value went out since: no heartbeat
  out.beat() // nothing since the last call: a heartbeat
  out.write(frames([6], 1), true)
  const bytes = await settledWithin(received, BOUND_MS)
  if (bytes === 'hung') return t.fail('the connection did not end')
  const got = new FrameParser().push(bytes)
  t.same(
    got.map((f) => [f.index, f.status]),
    [
      [0, 'ok'],
      [HEARTBEAT_INDEX, 'heartbeat'],
      [1, 'ok'],
    ],
  )
  t.equal(got[1]?.payload.length, 0, 'a heartbeat is empty')
})

t.test('beat: called at each interval with nothing else to send, a heartbeat goes out at each', async (t) => {
  const { writer, reader } = await socketPair(t)
  const received = readToEnd(reader)
  const out = new FrameWriter(writer)
  for (let i = 0; i < 4; i++) out.beat()
  out.write([], true)
  const bytes = await settledWithin(received, BOUND_MS)
  t.equal(bytes === 'hung' ? -1 : new FrameParser().push(bytes).length, 4, 'four intervals, four heartbeats')
})

t.test('a destroyed sink: writes are dropped without a throw', async (t) => {
  const { writer } = await socketPair(t)
  const { sink, writes } = recording(writer)
  writer.destroy()
  const out = new FrameWriter(sink)
  t.doesNotThrow(() => out.write(frames([10]), true))
  t.same(writes, [], 'nothing given to a destroyed socket')
})
