// Codecs: bytes, string, json and custom round-trip; bad values are TypeErrors; cached bytes own
// their memory (no pinned pool slab).
import t from 'tap'
import { InvalidOptionError } from '../lib/errors.js'
import { bytesCodec, jsonCodec, ownBytes, resolveCodec, stringCodec } from '../lib/codec.js'

t.test('resolveCodec picks the built-ins and accepts a custom codec', async (t) => {
  t.equal(resolveCodec(undefined), bytesCodec)
  t.equal(resolveCodec('bytes'), bytesCodec)
  t.equal(resolveCodec('string'), stringCodec)
  t.equal(resolveCodec('json'), jsonCodec)
  const custom = { encode: (n: number) => Buffer.from(String(n)), decode: (b: Buffer) => Number(b.toString()) }
  t.equal(resolveCodec(custom), custom)
  for (const bad of ['xml', 42, null, { encode: () => Buffer.alloc(0) }]) {
    t.throws(() => resolveCodec(bad as never), InvalidOptionError, `rejects ${JSON.stringify(bad)}`)
  }
})

t.test('bytes: Uint8Array in, bytes out; anything else is a TypeError', async (t) => {
  const u8 = new Uint8Array([1, 2, 3])
  t.equal(bytesCodec.encode(u8 as Buffer), u8)
  for (const bad of ['text', 12, null, undefined, { length: 1 }, [1, 2], new ArrayBuffer(2)]) {
    t.throws(() => bytesCodec.encode(bad as never), TypeError)
  }
  const b = Buffer.from('x')
  t.equal(bytesCodec.decode(b), b)
})

t.test('string: UTF-8 both ways; non-strings are TypeErrors', async (t) => {
  for (const s of ['', 'héllo', '😀 emoji', 'a\u0000b']) t.equal(stringCodec.decode(Buffer.from(stringCodec.encode(s))), s)
  t.equal(Buffer.from(stringCodec.encode('ü')).length, 2)
  t.throws(() => stringCodec.encode(Buffer.from('x') as never), TypeError)
})

t.test('json: round trip; a value without a JSON form is a TypeError', async (t) => {
  const v = { a: [1, 'two', null], b: { c: true }, s: 'ü😀' }
  t.same(jsonCodec.decode(Buffer.from(jsonCodec.encode(v))), v)
  t.equal(jsonCodec.decode(Buffer.from(jsonCodec.encode(0))), 0)
  t.throws(() => jsonCodec.encode(undefined), TypeError)
  t.throws(() => jsonCodec.encode(() => 1), TypeError)
  t.throws(() => jsonCodec.encode({ toJSON: () => undefined }), TypeError)
})

t.test('ownBytes copies views into larger memory and keeps whole buffers', async (t) => {
  const pooled = Buffer.from('small') // a view into Buffer's shared 8 KiB pool
  t.ok(pooled.buffer.byteLength > pooled.byteLength, 'precondition: the test value is a pooled view')
  const own = ownBytes(pooled)
  t.equal(own.buffer.byteLength, own.byteLength, 'the copy owns exactly its bytes')
  t.equal(own.toString(), 'small')
  const whole = Buffer.alloc(100)
  t.equal(ownBytes(whole), whole, 'a buffer owning its memory is kept as is')
  const u8 = new Uint8Array([9, 8, 7])
  const wrapped = ownBytes(u8)
  t.ok(Buffer.isBuffer(wrapped))
  t.equal(wrapped.buffer, u8.buffer, 'a whole Uint8Array is wrapped, not copied')
  const slice = new Uint8Array(new ArrayBuffer(64), 8, 4)
  t.equal(ownBytes(slice).buffer.byteLength, 4, 'a slice is copied')
})
