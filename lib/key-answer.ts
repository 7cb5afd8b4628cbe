// One key asked of this peer, answered as a frame: shared by the batch answer (batch-answer.ts) and
// the peer stream (stream-answer.ts), so that both give a key the same answer.
import { type BatchItem, encodeFrame } from './frames.js'
import type { ServedGroup, WireEntry } from './protocol.js'
import { errorFrame } from './refusals.js'

export const EMPTY = Buffer.alloc(0)

/** The groups this peer serves. */
export interface KeyServing {
  group(name: string): ServedGroup | undefined
}

/**
 * The frame for key `item` at `index`: at once when the cache (or an error) answers, else a promise
 * of it (a load, or a wait for one). `value` makes the frame of a value (a batch may answer `retry`
 * instead, past its byte budget); `signal` is taken only when the key has to wait, and aborting it
 * takes that wait off its flight.
 */
export function answerKey(
  o: KeyServing,
  index: number,
  item: BatchItem,
  signal: () => AbortSignal,
  value: (index: number, e: WireEntry) => Buffer[],
): Buffer[] | Promise<Buffer[]> {
  const group = o.group(item.group)
  if (group === undefined) return encodeFrame(index, 'unknown-group', Buffer.from(`no group "${item.group}" on this peer`))
  try {
    const found = item.peek ? group.peek(item.key) : group.serve(item.key, signal)
    if (found instanceof Promise)
      return found.then(
        (e) => value(index, e),
        (err: unknown) => errorFrame(index, err),
      )
    return found ? value(index, found) : encodeFrame(index, 'miss', EMPTY)
  } catch (err) {
    return errorFrame(index, err)
  }
}

/** The frame of a value, or of an absent value. */
export function valueFrame(index: number, e: WireEntry): Buffer[] {
  return encodeFrame(index, e.absent ? 'absent' : 'ok', e.bytes, e.expiresAt, e.version)
}
