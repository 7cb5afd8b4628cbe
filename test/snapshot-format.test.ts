// Mirrors lib/snapshot-format.ts: the version-1 byte layout, SnapshotReader fed in any chunking, each item kind, and close().
import { crc32 } from 'node:zlib'
import t from 'tap'
import {
  encodeEnd,
  encodeHeader,
  encodeRecord,
  SNAPSHOT_FORMAT,
  SNAPSHOT_MAGIC,
  type SnapshotItem,
  SnapshotReader,
  type SnapshotRecord,
  UnreadableHeader,
  UnreadableInput,
} from '../lib/snapshot-format.js'

const limits = { maxKeyBytes: 4096, maxValueBytes: 1 << 20 }

/** `bytes` as chunks of `size` bytes (the last one shorter), as a stream may cut them. */
async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

/** Every item a reader gives for `bytes`, after its header. */
async function readAll(source: AsyncIterable<Uint8Array | string>): Promise<SnapshotItem[]> {
  const reader = new SnapshotReader(source)
  await reader.header()
  const items: SnapshotItem[] = []
  for await (const item of reader.items(limits)) items.push(item)
  return items
}

/** What `promise` rejects with; undefined when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  )
}

const records: SnapshotRecord[] = [
  { key: 'a', bytes: Buffer.from('one'), version: 1, expiresAt: 0, absent: false },
  { key: 'ключ 😀', bytes: Buffer.alloc(300, 7), version: 2 ** 53 - 1, expiresAt: 1_764_545_000_000, absent: false },
  { key: 'gone', bytes: Buffer.alloc(0), version: 5, expiresAt: 9, absent: true },
  { key: 'empty', bytes: Buffer.alloc(0), version: 6, expiresAt: 0, absent: false },
]
const whole = Buffer.concat([encodeHeader('orders.v2', 1_764_545_123_456), ...records.map(encodeRecord), encodeEnd(records.length)])

t.test('the header, byte by byte: magic with CR LF, u16 format, u8 name length, name, u64 createdAt, crc32 of all before', async (t) => {
  const h = encodeHeader('g-1', 258)
  t.same(h.subarray(0, 8), Buffer.from('PCSNAP\r\n', 'latin1'))
  t.equal(h.readUInt16BE(8), SNAPSHOT_FORMAT)
  t.equal(h.readUInt8(10), 3)
  t.equal(h.toString('latin1', 11, 14), 'g-1')
  t.equal(h.readBigUInt64BE(14), 258n, 'big-endian')
  t.equal(h.readUInt32BE(22), crc32(h.subarray(0, 22)))
  t.equal(h.length, 26)
})

t.test('a record, byte by byte: head with its own crc, then key, value and the crc of the body', async (t) => {
  const r = encodeRecord({ key: 'ü', bytes: Buffer.from([9, 8]), version: 0x0102, expiresAt: 3 })
  t.equal(r.readUInt8(0), 1, 'tag 1: a value')
  t.equal(r.readUInt32BE(1), 2, 'the key length in UTF-8 bytes')
  t.equal(r.readUInt32BE(5), 2)
  t.equal(r.readBigUInt64BE(9), 0x0102n)
  t.equal(r.readBigUInt64BE(17), 3n)
  t.equal(r.readUInt32BE(25), crc32(r.subarray(0, 25)))
  t.same(r.subarray(29, 33), Buffer.from([0xc3, 0xbc, 9, 8]))
  t.equal(r.readUInt32BE(33), crc32(r.subarray(29, 33)))
  t.equal(r.length, 37)
  t.equal(encodeRecord({ key: 'k', bytes: Buffer.alloc(0), version: 1, expiresAt: 0, absent: true }).readUInt8(0), 2, 'tag 2: absent')
  const end = encodeEnd(70_000)
  t.same(
    [end.readUInt8(0), end.readUInt32BE(1), end.readUInt32BE(5), end.length],
    [0, 70_000, crc32(end.subarray(0, 5)), 9],
    'the end mark',
  )
})

t.test('what was encoded reads back the same, whatever the chunking (1 byte to the whole file)', async (t) => {
  const expected = [...records.map((record) => ({ kind: 'record', record })), { kind: 'end' }]
  for (const size of [1, 2, 3, 7, 25, 29, 64, whole.length]) {
    const reader = new SnapshotReader(chunked(whole, size))
    t.same(
      await reader.header(),
      { format: SNAPSHOT_FORMAT, group: 'orders.v2', createdAt: 1_764_545_123_456 },
      `header, ${size}-byte chunks`,
    )
    const items: SnapshotItem[] = []
    for await (const item of reader.items(limits)) items.push(item)
    t.same(items, expected, `items, ${size}-byte chunks`)
  }
})

t.test('a value read back owns its memory (not a view of the input chunk)', async (t) => {
  const [first] = await readAll(chunked(whole, whole.length))
  const bytes = first?.kind === 'record' ? first.record.bytes : undefined
  t.same(bytes, Buffer.from('one'))
  t.ok(bytes !== undefined && bytes.buffer !== whole.buffer, 'a copy: holding one value does not pin the whole input')
})

t.test('over a limit: skipped with the reason, read past in any chunking, and the reading goes on', async (t) => {
  const big = { key: 'big', bytes: Buffer.alloc(5000, 1), version: 1, expiresAt: 0 }
  const longKey = { key: 'k'.repeat(100), bytes: Buffer.from('v'), version: 1, expiresAt: 0 }
  const bytes = Buffer.concat([encodeHeader('g', 0), encodeRecord(big), encodeRecord(longKey), encodeRecord(records[0]!), encodeEnd(3)])
  for (const size of [1, 13, bytes.length]) {
    const reader = new SnapshotReader(chunked(bytes, size))
    await reader.header()
    const items: SnapshotItem[] = []
    for await (const item of reader.items({ maxKeyBytes: 99, maxValueBytes: 4999 })) items.push(item)
    t.same(
      items.map((i) => (i.kind === 'skipped' ? i.why : i.kind)),
      ['value of 5000 bytes', 'key of 100 bytes', 'record', 'end'],
      `${size}-byte chunks`,
    )
  }
  // The limits are inclusive: a key and a value exactly at them are read.
  const exact = Buffer.concat([
    encodeHeader('g', 0),
    encodeRecord({ key: 'kk', bytes: Buffer.alloc(3), version: 1, expiresAt: 0 }),
    encodeEnd(1),
  ])
  const reader = new SnapshotReader(chunked(exact, 5))
  await reader.header()
  const kinds: string[] = []
  for await (const item of reader.items({ maxKeyBytes: 2, maxValueBytes: 3 })) kinds.push(item.kind)
  t.same(kinds, ['record', 'end'])
})

t.test('a skipped record cut short is fatal damage, not a hang', async (t) => {
  const big = encodeRecord({ key: 'big', bytes: Buffer.alloc(5000), version: 1, expiresAt: 0 })
  const reader = new SnapshotReader(chunked(Buffer.concat([encodeHeader('g', 0), big.subarray(0, 200)]), 64))
  await reader.header()
  const items: SnapshotItem[] = []
  for await (const item of reader.items({ maxKeyBytes: 10, maxValueBytes: 10 })) items.push(item)
  t.same(items, [{ kind: 'damaged', fatal: true }])
})

t.test('damage: a bad body is not fatal; a bad head, an unknown tag or a bad end mark is', async (t) => {
  const header = encodeHeader('g', 0)
  const body = encodeRecord(records[0]!)
  const flip = (b: Buffer, at: number) => {
    const out = Buffer.from(b)
    out.writeUInt8(out.readUInt8(at) ^ 0x40, at)
    return out
  }
  const end = encodeEnd(2)
  const cases: [string, Buffer[], string[]][] = [
    ['a bit in the value', [flip(body, 30), body, end], ['damaged', 'record', 'end']],
    ['a bit in the head (its lengths cannot be believed)', [flip(body, 6), body, end], ['fatal']],
    ['tag 3', [Buffer.concat([Buffer.from([3]), body.subarray(1)]), end], ['fatal']],
    ['the end count changed', [body, flip(end, 4)], ['record', 'fatal']],
    ['no end mark', [body], ['record', 'fatal']],
    ['the end mark cut', [body, end.subarray(0, 6)], ['record', 'fatal']],
  ]
  for (const [what, parts, expected] of cases) {
    const items = await readAll(chunked(Buffer.concat([header, ...parts]), 11))
    t.same(
      items.map((i) => (i.kind === 'damaged' ? (i.fatal ? 'fatal' : 'damaged') : i.kind)),
      expected,
      what,
    )
  }
})

t.test('the end mark count is checked against the records read (a record cut out at a boundary is damage)', async (t) => {
  // encodeEnd writes the number of records, and the README says the end mark tells a whole file from a cut one;
  // the reader checked only the end mark's checksum, so a snapshot with a whole record spliced out read as complete.
  const spliced = Buffer.concat([encodeHeader('g', 0), encodeRecord(records[0]!), encodeEnd(2)])
  const items = await readAll(chunked(spliced, spliced.length))
  t.not(items.at(-1)?.kind, 'end', 'an end mark counting 2 after 1 record is not a whole input')
})

t.test('header errors are UnreadableHeader with the reason; text instead of bytes is UnreadableInput', async (t) => {
  const other = Buffer.from(whole)
  other.writeUInt16BE(2, SNAPSHOT_MAGIC.length)
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /ends before the header/],
    ['the magic without CR LF (a text transfer)', Buffer.concat([Buffer.from('PCSNAP\n'), whole.subarray(8)]), /bad magic/],
    ['cut after the format', whole.subarray(0, 11), /ends before the header/],
    ['format 2', other, /format version 2; this reader knows version 1/],
    ['createdAt changed', Buffer.concat([whole.subarray(0, 21), Buffer.from([0xff]), whole.subarray(22)]), /header checksum/],
  ]
  // These classes keep Error's name, so tap's class matching (by name) cannot tell them apart: instanceof it is.
  for (const [what, bytes, message] of cases) {
    const err = await rejection(new SnapshotReader(chunked(bytes, 4)).header())
    t.ok(err instanceof UnreadableHeader, `${what}: UnreadableHeader`)
    t.match((err as Error).message, message, `${what}: the reason`)
  }
  async function* text(afterHeader: boolean): AsyncGenerator<Uint8Array | string> {
    if (afterHeader) yield encodeHeader('g', 0)
    yield 'PCSNAP\r\n'
  }
  t.ok((await rejection(new SnapshotReader(text(false)).header())) instanceof UnreadableInput, 'a string chunk')
  t.ok((await rejection(readAll(text(true)))) instanceof UnreadableInput, 'a string chunk after the header')
})

t.test('close() releases the input: the source is returned and nothing more is pulled', async (t) => {
  let pulled = 0
  let returned = false
  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        pulled++
        return { done: false, value: whole.subarray((pulled - 1) * 30, pulled * 30) }
      },
      return: async () => {
        returned = true
        return { done: true, value: undefined }
      },
    }),
  }
  const reader = new SnapshotReader(source)
  t.equal((await reader.header()).group, 'orders.v2')
  const before = pulled
  await reader.close()
  t.ok(returned, 'the source was told to stop')
  t.equal(pulled, before, 'no chunk was pulled by close()')
})
