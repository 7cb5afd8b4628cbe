// The batch's frames: an answer read back whole however the network cuts it into chunks.
import t from 'tap'
import { encodeFrame, FrameParser, HEARTBEAT_INDEX } from '../lib/frames.js'

const frames = [
  encodeFrame(0, 'ok', Buffer.from('a small value'), 123, 456),
  encodeFrame(HEARTBEAT_INDEX, 'heartbeat', Buffer.alloc(0)),
  encodeFrame(7, 'ok', Buffer.alloc(10_000, 7), 0, 1),
  encodeFrame(3, 'miss', Buffer.alloc(0)),
  encodeFrame(2, 'load', Buffer.from('the origin said no')),
]
const wire = Buffer.concat(frames.flat())

for (const size of [1, 2, 7, 24, 25, 26, 100, 4096, 9999, wire.length]) {
  t.test(`cut into chunks of ${size} bytes`, async (t) => {
    const parser = new FrameParser()
    const got = []
    for (let o = 0; o < wire.length; o += size)
      for (const f of parser.push(wire.subarray(o, o + size))) got.push({ ...f, payload: Buffer.from(f.payload).toString('hex') })
    t.same(
      got.map((f) => [f.index, f.status, f.expiresAt, f.version]),
      [
        [0, 'ok', 123, 456],
        [HEARTBEAT_INDEX, 'heartbeat', 0, 0],
        [7, 'ok', 0, 1],
        [3, 'miss', 0, 0],
        [2, 'load', 0, 0],
      ],
      'every frame, in order',
    )
    t.same(
      got.map((f) => f.payload),
      frames.map((f) => f[1]!.toString('hex')),
      'each with its payload',
    )
  })
}
