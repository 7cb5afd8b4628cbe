// The binary frames of a batched fetch (README, "Protocol"): many keys in one request, their values
// streamed back one frame each as they are ready, in any order. Length-prefixed, little-endian, no
// JSON and no base64, so a value crosses the wire as its own bytes.
//
// Request body, per key:  u16 flags+group length | group (UTF-8) | u32 key length | key (UTF-8)
//   (the top bit of the u16 asks for a peek: the cached value only, never a load; group names are ≤ 64 bytes)
// Response body, per key: u32 index | u8 status | f64 expiresAt | f64 version | u32 length | payload
//   (payload: the value, or for an error status its message in UTF-8)
import type { ErrorReason } from './protocol.js'

export interface BatchItem {
  group: string
  key: string
  /** Answer from the cache only ('miss' when not held): never load. */
  peek?: boolean
}

const PEEK = 0x8000

export type FrameStatus = 'ok' | 'miss' | 'absent' | 'heartbeat' | ErrorReason

/**
 * The index of a heartbeat frame: no key's. An asker that does not know heartbeats finds no key
 * there and skips the frame; one that does takes it as "alive, still loading".
 */
export const HEARTBEAT_INDEX = 0xffffffff

/**
 * Frame status codes: 0 is a value, 7 a peek that found nothing, 8 an absent value (empty payload,
 * with its expiry and version: only groups with absentTtlMs send it), 9 an origin past loadTimeoutMs, 12 a
 * heartbeat (at HEARTBEAT_INDEX, empty: the owner is alive while loads run); the others are the protocol's
 * error reasons. Codes are only ever appended, so older frames keep their meaning.
 */
export const FRAME_STATUS: readonly FrameStatus[] = [
  'ok',
  'load',
  'invalid-value',
  'unknown-group',
  'bad-request',
  'internal',
  'closing',
  'miss',
  'absent',
  'load-timeout',
  'overloaded',
  'retry',
  'heartbeat',
]
const STATUS_CODE = new Map(FRAME_STATUS.map((s, i) => [s, i]))

export const FRAME_HEADER_BYTES = 25

export function encodeBatch(items: readonly BatchItem[]): Buffer {
  let size = 0
  for (const it of items) size += 6 + Buffer.byteLength(it.group) + Buffer.byteLength(it.key)
  const out = Buffer.allocUnsafe(size)
  let o = 0
  for (const it of items) {
    const g = out.write(it.group, o + 2)
    out.writeUInt16LE(it.peek ? g | PEEK : g, o)
    o += 2 + g
    const k = out.write(it.key, o + 4)
    out.writeUInt32LE(k, o)
    o += 4 + k
  }
  return out
}

/** The items of a request body; throws a RangeError on a truncated or malformed body. */
export function decodeBatch(body: Buffer): BatchItem[] {
  const items: BatchItem[] = []
  let o = 0
  while (o < body.length) {
    if (o + 2 > body.length) throw new RangeError('truncated batch')
    const flags = body.readUInt16LE(o)
    const g = flags & ~PEEK
    o += 2
    if (o + g + 4 > body.length) throw new RangeError('truncated batch')
    const group = body.toString('utf8', o, o + g)
    o += g
    const k = body.readUInt32LE(o)
    o += 4
    if (o + k > body.length) throw new RangeError('truncated batch')
    items.push({ group, key: body.toString('utf8', o, o + k), peek: (flags & PEEK) !== 0 })
    o += k
  }
  return items
}

/** One response frame. */
export function encodeFrame(index: number, status: FrameStatus, payload: Uint8Array, expiresAt = 0, version = 0): Buffer[] {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  head.writeUInt32LE(index, 0)
  head.writeUInt8(STATUS_CODE.get(status) ?? STATUS_CODE.get('internal')!, 4)
  head.writeDoubleLE(expiresAt, 5)
  head.writeDoubleLE(version, 13)
  head.writeUInt32LE(payload.byteLength, 21)
  return [head, payload as Buffer]
}

export interface Frame {
  index: number
  status: FrameStatus
  expiresAt: number
  version: number
  /** A view into the network buffer: copy it (ownBytes) before keeping it. */
  payload: Buffer
}

/** Reassembles frames from a stream of chunks. */
export class FrameParser {
  /** Pieces of the unfinished frame (a large value spans many), joined once it is complete. */
  #parts: Buffer[] = []
  #size = 0
  /** Bytes of the unfinished frame: its header's until that is whole, then the whole frame's. */
  #need = FRAME_HEADER_BYTES

  /**
   * Frames completed by `chunk`. Only a frame that spans chunks is copied (its own bytes, once);
   * the frames wholly inside a chunk are views into it.
   */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = []
    let o = 0
    while (this.#size > 0) {
      const take = Math.min(this.#need - this.#size, chunk.length - o)
      this.#parts.push(take === chunk.length ? chunk : chunk.subarray(o, o + take))
      this.#size += take
      o += take
      if (this.#size < this.#need) return frames
      const buf = Buffer.concat(this.#parts, this.#size)
      this.#parts = [buf]
      if (this.#need === FRAME_HEADER_BYTES) {
        this.#need += buf.readUInt32LE(21)
        if (this.#need > this.#size) continue // the header is whole: now the payload
      }
      frames.push(frameAt(buf, 0))
      this.#parts = []
      this.#size = 0
      this.#need = FRAME_HEADER_BYTES
    }
    while (chunk.length - o >= FRAME_HEADER_BYTES) {
      const len = chunk.readUInt32LE(o + 21)
      if (chunk.length - o < FRAME_HEADER_BYTES + len) break
      frames.push(frameAt(chunk, o))
      o += FRAME_HEADER_BYTES + len
    }
    const rest = chunk.length - o
    if (rest > 0) {
      this.#parts = [o === 0 ? chunk : chunk.subarray(o)]
      this.#size = rest
      this.#need = rest >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + chunk.readUInt32LE(o + 21) : FRAME_HEADER_BYTES
    }
    return frames
  }
}

/** The frame whose header starts at `o` of `buf` (whole in it). */
function frameAt(buf: Buffer, o: number): Frame {
  return {
    index: buf.readUInt32LE(o),
    status: FRAME_STATUS[buf.readUInt8(o + 4)] ?? 'internal',
    expiresAt: buf.readDoubleLE(o + 5),
    version: buf.readDoubleLE(o + 13),
    payload: buf.subarray(o + FRAME_HEADER_BYTES, o + FRAME_HEADER_BYTES + buf.readUInt32LE(o + 21)),
  }
}
