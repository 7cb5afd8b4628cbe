// The snapshot file format, version 1 (README, "Snapshots"): bytes only, no group or cache in sight.
// Every integer is big-endian. A header, then records, then an end mark:
//
//   header  magic "PCSNAP\r\n" (8) | format u16 | name length u8 | group name (ASCII) | createdAt u64 (ms) | crc32 u32
//   record  tag u8 (1: a value, 2: an absent value, with no bytes) | key length u32 | value length u32 | version u64 | expiresAt u64 (ms, 0: never) | crc32 u32 (of the 25 bytes before)
//           | key (UTF-8) | value | crc32 u32 (of key and value)
//   end     tag 0 u8 | records u32 | crc32 u32 (of the 5 bytes before)
//
// A record has two checksums so that damage can be told apart: a bad head (its lengths cannot be
// believed) ends the reading, a bad body only loses that record, and the reading goes on after it.
// The CR LF in the magic catches a file mangled by a text transfer. The end mark tells a whole file
// from one cut at a record boundary.
import { crc32 } from 'node:zlib'
import { ownBytes } from './codec.js'

export const SNAPSHOT_MAGIC = Buffer.from('PCSNAP\r\n', 'latin1')
/** Raised on any incompatible change of the layout above; a reader refuses other versions. */
export const SNAPSHOT_FORMAT = 1

const TAG_END = 0
const TAG_RECORD = 1
const TAG_ABSENT = 2
/** tag, key length, value length, version, expiresAt. */
const RECORD_HEAD_BYTES = 1 + 4 + 4 + 8 + 8
const END_BYTES = 1 + 4

export interface SnapshotHeader {
  readonly format: number
  readonly group: string
  /** When the snapshot was taken, ms since the epoch. */
  readonly createdAt: number
}

export interface SnapshotRecord {
  readonly key: string
  readonly bytes: Buffer
  readonly version: number
  /** Absolute expiry in ms since the epoch; 0: never. */
  readonly expiresAt: number
  /** An absent value (the origin had nothing for the key; `bytes` is empty). */
  readonly absent?: boolean
}

export function encodeHeader(group: string, createdAt: number): Buffer {
  const name = Buffer.from(group, 'latin1')
  const out = Buffer.alloc(SNAPSHOT_MAGIC.length + 2 + 1 + name.length + 8 + 4)
  let at = SNAPSHOT_MAGIC.copy(out, 0)
  at = out.writeUInt16BE(SNAPSHOT_FORMAT, at)
  at = out.writeUInt8(name.length, at)
  at += name.copy(out, at)
  at = out.writeBigUInt64BE(BigInt(createdAt), at)
  out.writeUInt32BE(crc32(out.subarray(0, at)), at)
  return out
}

export function encodeRecord(record: SnapshotRecord): Buffer {
  const key = Buffer.from(record.key, 'utf8')
  const out = Buffer.allocUnsafe(RECORD_HEAD_BYTES + 4 + key.length + record.bytes.length + 4)
  let at = out.writeUInt8(record.absent ? TAG_ABSENT : TAG_RECORD, 0)
  at = out.writeUInt32BE(key.length, at)
  at = out.writeUInt32BE(record.bytes.length, at)
  at = out.writeBigUInt64BE(BigInt(record.version), at)
  at = out.writeBigUInt64BE(BigInt(record.expiresAt), at)
  at = out.writeUInt32BE(crc32(out.subarray(0, at)), at)
  const body = at
  at += key.copy(out, at)
  out.set(record.bytes, at)
  at += record.bytes.length
  out.writeUInt32BE(crc32(out.subarray(body, at)), at)
  return out
}

export function encodeEnd(records: number): Buffer {
  const out = Buffer.alloc(END_BYTES + 4)
  const at = out.writeUInt32BE(records, out.writeUInt8(TAG_END, 0))
  out.writeUInt32BE(crc32(out.subarray(0, at)), at)
  return out
}

/** What a reader found after the header, one item at a time. */
export type SnapshotItem =
  | { kind: 'record'; record: SnapshotRecord }
  /** A record that is whole but that the reader would not take (`why` says which limit it broke); the reading goes on. */
  | { kind: 'skipped'; why: string }
  /** A record whose checksum failed, or that was cut off; `fatal` when nothing after it can be read. */
  | { kind: 'damaged'; fatal: boolean }
  /** The end mark: the input was whole. */
  | { kind: 'end' }

export interface ReadLimits {
  /** Longer keys are skipped (read past, never held in memory). */
  maxKeyBytes: number
  /** Longer values are skipped. */
  maxValueBytes: number
}

/** Why the header could not be read (the reader's caller turns it into a SnapshotError). */
export class UnreadableHeader extends Error {}

/** The input is not a stream of bytes at all. */
export class UnreadableInput extends Error {}

/** Reads a snapshot from a stream of bytes: `header()` first, then `items()`. */
export class SnapshotReader {
  readonly #input: ByteReader

  constructor(input: AsyncIterable<Uint8Array | string>) {
    this.#input = new ByteReader(input)
  }

  /** The header; throws UnreadableHeader when the input does not start with a readable one. */
  async header(): Promise<SnapshotHeader> {
    const magic = await this.#input.read(SNAPSHOT_MAGIC.length)
    if (magic === undefined) throw new UnreadableHeader('the input ends before the header does')
    if (!magic.equals(SNAPSHOT_MAGIC)) throw new UnreadableHeader('not a peercache snapshot (bad magic)')
    const fixed = await this.#input.read(2 + 1)
    if (fixed === undefined) throw new UnreadableHeader('the input ends before the header does')
    const format = fixed.readUInt16BE(0)
    if (format !== SNAPSHOT_FORMAT) throw new UnreadableHeader(`format version ${format}; this reader knows version ${SNAPSHOT_FORMAT}`)
    const nameLength = fixed.readUInt8(2)
    const rest = await this.#input.read(nameLength + 8 + 4)
    if (rest === undefined) throw new UnreadableHeader('the input ends before the header does')
    const sum = rest.readUInt32BE(nameLength + 8)
    if (crc32(rest.subarray(0, nameLength + 8), crc32(fixed, crc32(magic))) !== sum) throw new UnreadableHeader('header checksum mismatch')
    const group = rest.toString('latin1', 0, nameLength)
    return { format, group, createdAt: Number(rest.readBigUInt64BE(nameLength)) }
  }

  /** Releases the input: a stream is destroyed, a file closed (nothing after the end mark is read). */
  close(): Promise<void> {
    return this.#input.close()
  }

  /** The records after the header, in order; ends after the end mark or the first fatal damage. */
  async *items(limits: ReadLimits): AsyncGenerator<SnapshotItem> {
    // Records passed so far (read, skipped or damaged): the end mark must count as many, else records
    // were cut out at their boundaries and the input is not whole.
    let records = -1
    for (;;) {
      records++
      const tag = await this.#input.read(1)
      if (tag === undefined) return yield { kind: 'damaged', fatal: true } // cut at a record boundary: no end mark
      if (tag[0] === TAG_END) {
        const end = await this.#input.read(8)
        if (end === undefined || crc32(end.subarray(0, 4), crc32(tag)) !== end.readUInt32BE(4) || end.readUInt32BE(0) !== records)
          return yield { kind: 'damaged', fatal: true }
        return yield { kind: 'end' }
      }
      const head = await this.#input.read(RECORD_HEAD_BYTES - 1 + 4)
      if (
        (tag[0] !== TAG_RECORD && tag[0] !== TAG_ABSENT) ||
        head === undefined ||
        crc32(head.subarray(0, 24), crc32(tag)) !== head.readUInt32BE(24)
      ) {
        return yield { kind: 'damaged', fatal: true }
      }
      const keyLength = head.readUInt32BE(0)
      const valueLength = head.readUInt32BE(4)
      if (keyLength > limits.maxKeyBytes || valueLength > limits.maxValueBytes) {
        const why = keyLength > limits.maxKeyBytes ? `key of ${keyLength} bytes` : `value of ${valueLength} bytes`
        if (!(await this.#input.skip(keyLength + valueLength + 4))) return yield { kind: 'damaged', fatal: true }
        yield { kind: 'skipped', why }
        continue
      }
      const body = await this.#input.read(keyLength + valueLength + 4)
      if (body === undefined) return yield { kind: 'damaged', fatal: true }
      if (crc32(body.subarray(0, keyLength + valueLength)) !== body.readUInt32BE(keyLength + valueLength)) {
        yield { kind: 'damaged', fatal: false }
        continue
      }
      const record: SnapshotRecord = {
        key: body.toString('utf8', 0, keyLength),
        bytes: ownBytes(body.subarray(keyLength, keyLength + valueLength)),
        version: Number(head.readBigUInt64BE(8)),
        expiresAt: Number(head.readBigUInt64BE(16)),
        absent: tag[0] === TAG_ABSENT,
      }
      yield { kind: 'record', record }
    }
  }
}

/** Reads exact lengths from a stream of chunks, holding no more than one record plus one chunk. */
class ByteReader {
  readonly #source: AsyncIterator<Uint8Array | string>
  #chunks: Buffer[] = []
  #length = 0
  #done = false

  constructor(input: AsyncIterable<Uint8Array | string>) {
    this.#source = input[Symbol.asyncIterator]()
  }

  /** The next `n` bytes, or undefined when the input ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.#length < n && !this.#done) await this.#pull()
    if (this.#length < n) return undefined
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length)
    this.#chunks = all.length > n ? [all.subarray(n)] : []
    this.#length -= n
    return all.subarray(0, n)
  }

  /** Stops reading: the input is released (a stream is destroyed, a file closed). */
  async close(): Promise<void> {
    await this.#source.return?.()
  }

  /** Reads past `n` bytes without keeping them; false when the input ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n
    while (left > 0) {
      if (this.#length === 0) {
        if (this.#done) return false
        await this.#pull()
        continue
      }
      const first = this.#chunks[0]!
      const dropped = Math.min(left, first.length)
      if (dropped === first.length) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(dropped)
      this.#length -= dropped
      left -= dropped
    }
    return true
  }

  async #pull(): Promise<void> {
    const next = await this.#source.next()
    if (next.done) {
      this.#done = true
      return
    }
    if (typeof next.value === 'string') throw new UnreadableInput('the input gave text, not bytes (a stream with setEncoding?)')
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    this.#chunks.push(chunk)
    this.#length += chunk.length
  }
}
