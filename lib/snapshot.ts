// A group's snapshot: its cached entries written to a stream, and read back into a group, keeping
// only what this process should hold under the current ring. The bytes are snapshot-format.ts's.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type Entry, entrySize } from './cache.js'
import { type Codec, decodeEntry } from './codec.js'
import { SnapshotError } from './errors.js'
import type { RestoreResult, SnapshotOptions, SnapshotResult } from './options.js'
import { encodeEnd, encodeHeader, encodeRecord, SnapshotReader, UnreadableHeader, UnreadableInput } from './snapshot-format.js'
import type { Store } from './store.js'
import { plausibleVersion } from './versions.js'

/** Records are gathered into writes of about this many bytes: one write per record costs more than the copy. */
const WRITE_CHUNK_BYTES = 64 * 1024
/**
 * How far ahead of this process's clock a restored version may be, in ms. A snapshot from a machine
 * whose clock ran ahead is still taken; a version from far in the future would push this process's
 * version clock there (every later write would lose to it), so such a record is skipped.
 */
const MAX_VERSION_AHEAD_MS = 60_000

/** What a snapshot or a restore needs of a group. */
export interface SnapshotTarget<T> {
  group: string
  store: Store<T>
  codec: Codec<T>
  /** This process's URL. */
  self: string
  /** The key's owner and replicas under the current ring (empty: no ring, every key is ours). */
  holders(key: string): string[]
  maxKeyBytes: number
  /** Whether the group keeps absent values (absentTtlMs > 0); if not, restored ones are skipped. */
  keepsAbsent: boolean
  /** Throws InvalidKeyError for a key the group would refuse. */
  checkKey(key: string): void
}

/**
 * Writes every fresh entry of the group (hot copies, then the main cache, each from least to most
 * recently used, so a restore leaves the same order) to `writable`.
 */
export async function writeSnapshot<T>(
  target: SnapshotTarget<T>,
  writable: NodeJS.WritableStream,
  options?: SnapshotOptions,
): Promise<SnapshotResult> {
  const now = Date.now()
  // The entries are listed at once (references only): the caches change while the bytes are written.
  const entries: [string, Entry<T>][] = []
  for (const cache of [target.store.hot, target.store.main]) {
    const fresh = [...cache.entries()].filter(([, e]) => e.expiresAt === 0 || e.expiresAt > now)
    entries.push(...fresh.reverse())
  }
  const result: SnapshotResult = { entries: entries.length, bytes: 0, createdAt: now }
  function* chunks(): Generator<Buffer> {
    let pending: Buffer[] = [encodeHeader(target.group, now)]
    let size = pending[0]!.length
    for (const [key, entry] of entries) {
      const { bytes, version, expiresAt, absent } = entry
      const record = encodeRecord({ key, bytes, version, expiresAt, absent })
      pending.push(record)
      size += record.length
      if (size < WRITE_CHUNK_BYTES) continue
      result.bytes += size
      yield Buffer.concat(pending, size)
      pending = []
      size = 0
    }
    const end = encodeEnd(entries.length)
    result.bytes += size + end.length
    yield Buffer.concat([...pending, end])
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), writable, { end: options?.end ?? true, signal: options?.signal })
  return result
}

/**
 * Reads a snapshot into the group: keys this process owns or replicates go to the main cache; other
 * keys become hot copies while the hot cache has room (never evicting one); expired entries, and
 * entries older than what is held here (or than a removal), are skipped. Rejects with SnapshotError
 * only when the header cannot be read; damage after it is counted, and what came before is kept.
 */
export async function restoreSnapshot<T>(target: SnapshotTarget<T>, readable: AsyncIterable<Uint8Array>): Promise<RestoreResult> {
  const reader = new SnapshotReader(readable)
  try {
    const header = await reader.header()
    if (header.group !== target.group) throw new UnreadableHeader(`it is a snapshot of group "${header.group}"`)
    const result: RestoreResult = { restored: 0, skipped: 0, damaged: 0, complete: false, createdAt: header.createdAt }
    // Longer values cannot be cached here anyway, and are read past without being held.
    const limits = { maxKeyBytes: target.maxKeyBytes, maxValueBytes: target.store.main.maxBytes }
    for await (const item of reader.items(limits)) {
      if (item.kind === 'end') result.complete = true
      else if (item.kind === 'damaged') result.damaged++
      else if (item.kind === 'skipped') result.skipped++
      else if (keep(target, item.record.key, item.record)) result.restored++
      else result.skipped++
    }
    return result
  } catch (err) {
    if (err instanceof UnreadableHeader || err instanceof UnreadableInput)
      throw new SnapshotError(target.group, err.message, { cause: err })
    throw err
  } finally {
    await reader.close()
  }
}

/** Stores one record where it belongs; false when it is not kept (expired, invalid, older, or no room). */
function keep<T>(target: SnapshotTarget<T>, key: string, record: Omit<Entry<T>, 'value'>): boolean {
  const { store, codec, group } = target
  if (record.expiresAt !== 0 && record.expiresAt <= Date.now()) return false
  if (!plausibleVersion(record.version, MAX_VERSION_AHEAD_MS)) return false
  if (record.absent && !target.keepsAbsent) return false
  let entry: Entry<T>
  try {
    target.checkKey(key)
    entry = decodeEntry(codec, group, key, record)
  } catch {
    return false // a key or value this group refuses (another codec wrote it): never served
  }
  const holders = target.holders(key)
  if (holders.length === 0 || holders.includes(target.self)) return store.put(key, entry, 'main')
  const hot = store.hot.stats()
  if (hot.bytes + entrySize(key, entry.bytes) > hot.maxBytes) return false
  return store.put(key, entry, 'hot')
}
