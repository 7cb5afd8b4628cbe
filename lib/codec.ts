// Codecs turn a group's typed values into bytes and back. Storage and the wire always hold bytes;
// a codec only changes what `load` returns, what `set` takes and what `get` gives back.
import type { Entry } from './cache.js'
import { InvalidOptionError, InvalidValueError } from './errors.js'
import type { WireEntry } from './protocol.js'

/** Turns values of type T into bytes and back. `decode` gets bytes that `encode` made (maybe elsewhere). */
export interface Codec<T> {
  encode(value: T): Uint8Array
  decode(bytes: Buffer): T
}

/** The built-in codec names: `bytes` (Buffer in, Buffer out; the default), `string` (UTF-8) and `json`. */
export type CodecName = 'bytes' | 'string' | 'json'

export const bytesCodec: Codec<Buffer> = {
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError(`expected a Buffer or Uint8Array, got ${typeName(value)}`)
    return value
  },
  decode: (bytes) => bytes,
}

export const stringCodec: Codec<string> = {
  encode(value) {
    if (typeof value !== 'string') throw new TypeError(`expected a string, got ${typeName(value)}`)
    return Buffer.from(value, 'utf8')
  },
  decode: (bytes) => bytes.toString('utf8'),
}

export const jsonCodec: Codec<unknown> = {
  encode(value) {
    const text = JSON.stringify(value)
    if (text === undefined) throw new TypeError(`${typeName(value)} has no JSON form`)
    return Buffer.from(text, 'utf8')
  },
  decode: (bytes) => JSON.parse(bytes.toString('utf8')),
}

export function resolveCodec<T>(codec: CodecName | Codec<T> | undefined): Codec<T> {
  if (codec === undefined || codec === 'bytes') return bytesCodec as unknown as Codec<T>
  if (codec === 'string') return stringCodec as unknown as Codec<T>
  if (codec === 'json') return jsonCodec as Codec<T>
  if (codec !== null && typeof codec === 'object' && typeof codec.encode === 'function' && typeof codec.decode === 'function') return codec
  // A bad codec is a bad group option: the same error as every other one (still a TypeError).
  throw new InvalidOptionError('codec', `unknown codec ${JSON.stringify(codec)}: use 'bytes', 'string', 'json' or { encode, decode }`)
}

/** `value` as bytes, or InvalidValueError naming the group, the key and whose value it was. */
export function encodeValue<T>(codec: Codec<T>, group: string, key: string, value: T, whose: 'load' | 'set'): Uint8Array {
  try {
    return codec.encode(value)
  } catch (err) {
    const what = whose === 'load' ? "the loader's value" : 'the value given to set()'
    throw new InvalidValueError(group, key, `${what} cannot be stored: ${(err as Error)?.message ?? String(err)}`)
  }
}

/** A cache entry made from bytes with their metadata, or InvalidValueError when they do not decode. */
export function decodeEntry<T>(codec: Codec<T>, group: string, key: string, wire: WireEntry): Entry<T> {
  if (wire.absent) return absentEntry<T>(wire.expiresAt, wire.version)
  let value: T
  try {
    value = codec.decode(wire.bytes)
  } catch (err) {
    throw new InvalidValueError(group, key, `the value cannot be decoded: ${(err as Error)?.message ?? String(err)}`)
  }
  return { value, bytes: wire.bytes, expiresAt: wire.expiresAt, version: wire.version }
}

/** An absent value's entry: no bytes; `get` resolves `undefined` (so T includes undefined when absentTtlMs is on). */
export function absentEntry<T>(expiresAt: number, version: number): Entry<T> {
  return { value: undefined as T, bytes: NO_BYTES, expiresAt, version, absent: true }
}
const NO_BYTES = Buffer.alloc(0)

/**
 * A Buffer that owns its whole memory. A small Buffer is often a view into a shared 8 KiB pool slab
 * (Buffer.from(string)) or into a larger network read; caching such a view would pin the whole slab
 * and make the byte bound a lie. Copies only when the view is smaller than what it holds alive.
 */
export function ownBytes(bytes: Uint8Array): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer)) {
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, 0, bytes.byteLength)
  }
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength)
  copy.set(bytes)
  return copy
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v
}
