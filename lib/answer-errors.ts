// What a peer's HTTP answer other than success, or a failed connection, means to the caller.
import type { IncomingHttpHeaders } from 'node:http'
import { InvalidValueError, LoadError, LoadTimeoutError, PeerUnavailableError } from './errors.js'
import { HEADER } from './protocol.js'

/** Most bytes of an error answer read for its message (a refusal's JSON with a message of 1000 characters fits). */
const MAX_ERROR_BODY_BYTES = 8192
/** Most characters of a peer's message kept (refusals.ts sends at most as many). */
const MAX_MESSAGE_CHARS = 1000
/** Most characters shown of an answer that is not a peer's JSON. */
const MAX_SHOWN_CHARS = 500

export interface Answer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export function transportError(peer: string, err: unknown): PeerUnavailableError {
  const e = err as { code?: string; message?: string }
  return new PeerUnavailableError(peer, `${e?.code ?? 'error'}: ${e?.message ?? String(err)}`, { cause: err })
}

/** The error an answer other than success stands for. */
export function answerError(peer: string, group: string, key: string, a: Answer): Error {
  const reason = a.headers[HEADER.error]
  // Parsed whole (a peer's own refusal carries a message of up to 1000 characters), then cut: a peer
  // cannot fill a log through an error, and a long message is not broken into raw JSON.
  let message = a.body.toString('utf8', 0, MAX_ERROR_BODY_BYTES)
  try {
    const parsed = JSON.parse(message) as { message?: unknown }
    if (typeof parsed.message === 'string') message = parsed.message.slice(0, MAX_MESSAGE_CHARS)
    else message = message.slice(0, MAX_SHOWN_CHARS)
  } catch {
    message = message.slice(0, MAX_SHOWN_CHARS) // not JSON: another server answered; show what it said
  }
  if (reason === 'load') return new LoadError(group, key, message, { peer })
  if (reason === 'load-timeout') return new LoadTimeoutError(group, key, message, { peer })
  if (reason === 'invalid-value') return new InvalidValueError(group, key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `HTTP ${a.statusCode}${reason ? ` ${String(reason)}` : ''}: ${message}`, {
    reason: typeof reason === 'string' ? reason : `http-${a.statusCode}`,
  })
}
