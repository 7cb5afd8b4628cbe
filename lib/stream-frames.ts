// The request frames of a peer stream (README, "Protocol"): after the HTTP/1.1 Upgrade, the asker
// sends one frame per key and the owner answers each with the batch's answer frame (frames.ts),
// whose index is the request's id, in any order. Length-prefixed, little-endian, as the batch is.
//
// Request frame: u32 id | u16 flags+group length | group (UTF-8) | u32 key length | key (UTF-8)
//   (the top bit of the u16 asks for a peek, as in a batch; ids are the asker's, never HEARTBEAT_INDEX)
import { type BatchItem, HEARTBEAT_INDEX } from './frames.js'
import { MAX_KEY_BYTES } from './protocol.js'

const PEEK = 0x8000
/** Longest group name a frame may carry, in bytes (names are far shorter: see group-settings.ts). */
const MAX_GROUP_BYTES = 1024
/** The `Upgrade` token of the stream: a new layout would get a new token, so an older peer refuses it. */
export const STREAM_UPGRADE = 'peercache-stream/1'
/** Request ids run 0..MAX_STREAM_ID and wrap; HEARTBEAT_INDEX is never one. */
export const MAX_STREAM_ID = HEARTBEAT_INDEX - 1

export interface StreamRequest extends BatchItem {
  id: number
}

/** One request frame. */
export function encodeStreamRequest(id: number, item: BatchItem): Buffer {
  const g = Buffer.byteLength(item.group)
  const k = Buffer.byteLength(item.key)
  const out = Buffer.allocUnsafe(10 + g + k)
  out.writeUInt32LE(id, 0)
  out.writeUInt16LE(item.peek ? g | PEEK : g, 4)
  out.write(item.group, 6)
  out.writeUInt32LE(k, 6 + g)
  out.write(item.key, 10 + g)
  return out
}

/** Reassembles request frames from a stream of chunks; throws a RangeError on a frame past the limits (the stream cannot go on). */
export class StreamRequestParser {
  #rest: Buffer | undefined

  push(chunk: Buffer): StreamRequest[] {
    const buf = this.#rest === undefined ? chunk : Buffer.concat([this.#rest, chunk])
    const out: StreamRequest[] = []
    let o = 0
    while (buf.length - o >= 6) {
      const flags = buf.readUInt16LE(o + 4)
      const g = flags & ~PEEK
      if (g > MAX_GROUP_BYTES) throw new RangeError(`a group name of ${g} bytes (at most ${MAX_GROUP_BYTES})`)
      if (buf.length - o < 10 + g) break
      const k = buf.readUInt32LE(o + 6 + g)
      if (k > MAX_KEY_BYTES) throw new RangeError(`a key of ${k} bytes (at most ${MAX_KEY_BYTES})`)
      if (buf.length - o < 10 + g + k) break
      out.push({
        id: buf.readUInt32LE(o),
        group: buf.toString('utf8', o + 6, o + 6 + g),
        key: buf.toString('utf8', o + 10 + g, o + 10 + g + k),
        peek: (flags & PEEK) !== 0,
      })
      o += 10 + g + k
    }
    this.#rest = o === buf.length ? undefined : buf.subarray(o)
    return out
  }
}
