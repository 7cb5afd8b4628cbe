// Request bodies read within limits. The declared length is checked before a byte is read, the
// running size as chunks arrive and, for a batch, the item count as items complete, so a request
// that breaks a limit costs what was read up to the limit, never the decoding of its whole body.
// A body that was signed must also be the one signed (its digest is checked as it streams).
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { sameDigest } from './auth.js'
import { PeercacheError } from './errors.js'

/** Why a body was refused, with the HTTP status the server answers. */
export class BodyRejected extends PeercacheError {
  override readonly code = 'PEERCACHE_ERR_BODY'
  override name = 'BodyRejected'
  constructor(
    readonly status: 400 | 401 | 413,
    message: string,
  ) {
    super(message)
  }
}

export interface BodyLimits {
  /** Most bytes of body. */
  maxBytes: number
  /** For a batch body: most items, counted as they arrive. */
  maxItems?: number
  /** The digest the signed body must match (auth.ts); undefined when requests are not signed. */
  digest?: string
}

/**
 * The whole body, or a BodyRejected as soon as a limit is broken. The caller answers a rejection
 * with `connection: close`: the rest of an oversize body is not read.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    return Promise.reject(new BodyRejected(413, `the body is larger than ${limits.maxBytes} bytes`))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const hash = limits.digest === undefined ? undefined : createHash('sha256')
    const items = limits.maxItems === undefined ? undefined : new ItemCounter()
    const stop = (err: BodyRejected) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.pause()
      reject(err)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limits.maxBytes) return stop(new BodyRejected(413, `the body is larger than ${limits.maxBytes} bytes`))
      if (items && items.push(chunk) > limits.maxItems!) return stop(new BodyRejected(400, `a batch holds at most ${limits.maxItems} keys`))
      hash?.update(chunk)
      chunks.push(chunk)
    }
    const onEnd = () => {
      if (hash && !sameDigest(limits.digest!, hash.digest('base64url')))
        return reject(new BodyRejected(401, 'the body is not the one signed'))
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    req.on('data', onData)
    req.once('end', onEnd)
    // The sender hung up mid-body ('error' aborted, or a close before the end): nothing to answer, but the read must settle.
    const cut = () => reject(new BodyRejected(400, 'the body was cut short'))
    req.once('error', cut)
    req.once('close', () => {
      if (!req.complete) cut()
    })
  })
}

/**
 * Counts the items of a batch body (frames.ts: u16 flags+group length, group, u32 key length, key)
 * as its chunks arrive, reading only the length fields: the strings are decoded later, once the
 * whole body is known to be within the limits.
 */
export class ItemCounter {
  /** Items whose length fields have been read (an item is counted once its key length is known). */
  count = 0
  /** Bytes to skip before the next length field (the group or the key). */
  #skip = 0
  /** The length field being read: 2 bytes (group) or 4 (key), possibly across chunks. */
  #field = Buffer.alloc(4)
  #have = 0
  #want: 2 | 4 = 2

  /** Reads `chunk`; returns the count so far. */
  push(chunk: Buffer): number {
    let o = 0
    while (o < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - o)
        this.#skip -= n
        o += n
        continue
      }
      const n = Math.min(this.#want - this.#have, chunk.length - o)
      chunk.copy(this.#field, this.#have, o, o + n)
      this.#have += n
      o += n
      if (this.#have < this.#want) break
      this.#have = 0
      if (this.#want === 2) {
        this.#skip = this.#field.readUInt16LE(0) & 0x7fff
        this.#want = 4
      } else {
        this.#skip = this.#field.readUInt32LE(0)
        this.#want = 2
        this.count++
      }
    }
    return this.count
  }
}
