// What a peer's HTTP answer other than success, or a failed connection, means to the caller.
import type { IncomingHttpHeaders } from 'node:http'
import { InvalidValueError, LoadError, LoadTimeoutError, PeerUnavailableError } from './errors.js'
import { HEADER } from './protocol.js'

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
  let message = a.body.toString('utf8').slice(0, 500)
  try {
    const parsed = JSON.parse(message) as { message?: unknown }
    if (typeof parsed.message === 'string') message = parsed.message
  } catch {
    // not JSON: another server answered; show what it said
  }
  if (reason === 'load') return new LoadError(group, key, message, { peer })
  if (reason === 'load-timeout') return new LoadTimeoutError(group, key, message, { peer })
  if (reason === 'invalid-value') return new InvalidValueError(group, key, `${message} (at ${peer})`)
  return new PeerUnavailableError(peer, `HTTP ${a.statusCode}${reason ? ` ${String(reason)}` : ''}: ${message}`, {
    reason: typeof reason === 'string' ? reason : `http-${a.statusCode}`,
  })
}
