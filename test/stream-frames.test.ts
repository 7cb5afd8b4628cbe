// Mirrors lib/stream-frames.ts: request frames of the peer stream round-trip through the parser however the bytes are split, and frames past the limits are refused.
import t from 'tap'
import { HEARTBEAT_INDEX } from '../lib/frames.js'
import { MAX_KEY_BYTES } from '../lib/protocol.js'
import { encodeStreamRequest, MAX_STREAM_ID, type StreamRequest, StreamRequestParser, STREAM_UPGRADE } from '../lib/stream-frames.js'

const REQUESTS: StreamRequest[] = [
  { id: 0, group: 'users', key: 'alice', peek: false },
  { id: 1, group: 'users', key: '', peek: true },
  { id: MAX_STREAM_ID, group: 'grüße', key: '鍵🔑', peek: false },
  { id: 7, group: 'g', key: 'k'.repeat(MAX_KEY_BYTES), peek: true },
]

function encodeAll(requests: readonly StreamRequest[]): Buffer {
  return Buffer.concat(requests.map((r) => encodeStreamRequest(r.id, r)))
}

t.test('the upgrade token and the id range', async (t) => {
  t.equal(STREAM_UPGRADE, 'peercache-stream/1')
  t.equal(MAX_STREAM_ID, HEARTBEAT_INDEX - 1, 'a request id is never the heartbeat index')
})

t.test('the layout: u32 id | u16 flags+group length | group | u32 key length | key, little-endian', async (t) => {
  const b = encodeStreamRequest(0x01020304, { group: 'gé', key: 'ké', peek: true })
  t.equal(b.length, 10 + 3 + 3, 'lengths count UTF-8 bytes, not characters')
  t.equal(b.readUInt32LE(0), 0x01020304)
  t.equal(b.readUInt16LE(4), 0x8000 | 3, 'the top bit asks for a peek')
  t.equal(b.toString('utf8', 6, 9), 'gé')
  t.equal(b.readUInt32LE(9), 3)
  t.equal(b.toString('utf8', 13), 'ké')
  t.equal(encodeStreamRequest(5, { group: 'gé', key: 'ké' }).readUInt16LE(4), 3, 'no peek: no flag (peek left out counts as false)')
})

t.test('frames in one chunk come out in order, with their ids, groups, keys and peeks', async (t) => {
  const p = new StreamRequestParser()
  t.same(p.push(encodeAll(REQUESTS)), REQUESTS)
  t.same(p.push(Buffer.alloc(0)), [], 'nothing left over')
})

t.test('a frame split at every byte boundary comes out once, when its last byte arrives', async (t) => {
  const whole = encodeAll(REQUESTS.slice(0, 3))
  for (let cut = 1; cut < whole.length; cut++) {
    const p = new StreamRequestParser()
    const got = [...p.push(whole.subarray(0, cut)), ...p.push(whole.subarray(cut))]
    if (!t.same(got, REQUESTS.slice(0, 3), `cut at byte ${cut}`)) break
  }
})

t.test('bytes fed one at a time', async (t) => {
  const whole = encodeAll(REQUESTS)
  const p = new StreamRequestParser()
  const got: StreamRequest[] = []
  const completedAt: number[] = []
  for (let i = 0; i < whole.length; i++) {
    const out = p.push(whole.subarray(i, i + 1))
    if (out.length > 0) completedAt.push(i + 1)
    got.push(...out)
  }
  t.same(got, REQUESTS)
  let end = 0
  const ends = REQUESTS.map((r) => (end += encodeStreamRequest(r.id, r).length))
  t.same(completedAt, ends, 'each frame is given out with its last byte, not before')
})

t.test('limits: a group of 1024 bytes and a key of MAX_KEY_BYTES pass; one byte more is a RangeError', async (t) => {
  const p = new StreamRequestParser()
  const big = { id: 9, group: 'g'.repeat(1024), key: 'k'.repeat(MAX_KEY_BYTES), peek: false }
  t.same(p.push(encodeStreamRequest(big.id, big)), [big])
  t.throws(() => new StreamRequestParser().push(encodeStreamRequest(1, { group: 'g'.repeat(1025), key: 'k' })), RangeError)
  t.throws(() => new StreamRequestParser().push(encodeStreamRequest(1, { group: 'g', key: 'k'.repeat(MAX_KEY_BYTES + 1) })), RangeError)
})

t.test('an oversized length is refused from the header alone: the parser does not wait for (or buffer) the body', async (t) => {
  const header = Buffer.alloc(6)
  header.writeUInt32LE(1, 0)
  header.writeUInt16LE(0x7fff, 4) // the largest group length the u16 can say, peek bit clear
  t.throws(() => new StreamRequestParser().push(header), { name: 'RangeError', message: /32767 bytes/ })
  const keyHeader = Buffer.alloc(11)
  keyHeader.writeUInt16LE(1, 4)
  keyHeader.write('g', 6)
  keyHeader.writeUInt32LE(0xffffffff, 7)
  t.throws(() => new StreamRequestParser().push(keyHeader), { name: 'RangeError', message: /4294967295 bytes/ })
})

t.test('the peek bit is not taken for a group length, and a frame after a refused one is never given out', async (t) => {
  const peek = encodeStreamRequest(2, { group: 'x'.repeat(1024), key: 'k', peek: true })
  t.same(new StreamRequestParser().push(peek), [{ id: 2, group: 'x'.repeat(1024), key: 'k', peek: true }])
  const good = encodeStreamRequest(1, { group: 'g', key: 'a' })
  const bad = encodeStreamRequest(2, { group: 'g', key: 'k'.repeat(MAX_KEY_BYTES + 1) })
  const p = new StreamRequestParser()
  t.throws(() => p.push(Buffer.concat([good, bad])), RangeError, 'the whole chunk is refused: the stream cannot go on')
})
