// How a peer says no: a status, the protocol's reason in x-peercache-error, and a JSON body with a
// message, never a stack. Shared by the routes (server.ts) and batch answers (batch-answer.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BodyRejected, type BodyLimits, readBody } from './body.js'
import { ConflictError, InvalidKeyError, InvalidValueError, LoadError, LoadTimeoutError } from './errors.js'
import { encodeFrame } from './frames.js'
import { OverloadedError } from './overload.js'
import { MisdirectedError } from './owner.js'
import { type ErrorReason, HEADER, PROTOCOL_VERSION } from './protocol.js'

export const STATUS: Record<ErrorReason, number> = {
  'bad-request': 400,
  protocol: 400,
  unauthorized: 401,
  'unknown-group': 404,
  busy: 409,
  misdirected: 421,
  conflict: 409,
  load: 500,
  'invalid-value': 500,
  internal: 500,
  closing: 503,
  overloaded: 503,
  'load-timeout': 504,
  retry: 503,
}

/** Longest message sent back: an origin's error text is for logs, not a channel for megabytes. */
const MAX_MESSAGE_CHARS = 1000

/** How an error travels: its reason and the message the asker will see (the origin's message, never its stack). */
export function reasonOf(err: unknown): [ErrorReason, string] {
  if (err instanceof LoadTimeoutError) return ['load-timeout', err.originMessage.slice(0, MAX_MESSAGE_CHARS)]
  if (err instanceof LoadError) return ['load', err.originMessage.slice(0, MAX_MESSAGE_CHARS)]
  if (err instanceof InvalidValueError) return ['invalid-value', err.reason]
  if (err instanceof InvalidKeyError) return ['bad-request', err.message]
  if (err instanceof OverloadedError) return ['overloaded', err.message]
  if (err instanceof MisdirectedError) return ['misdirected', err.message]
  if (err instanceof ConflictError) return ['conflict', err.message]
  return ['internal', String((err as Error)?.message ?? err).slice(0, MAX_MESSAGE_CHARS)]
}

export function errorFrame(i: number, err: unknown): Buffer[] {
  const [reason, message] = reasonOf(err)
  return encodeFrame(i, reason, Buffer.from(message))
}

/** Answers with an error; once an answer has started, the connection is cut instead. */
export function fail(res: ServerResponse, reason: ErrorReason, message: string, status = STATUS[reason]): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify({ error: reason, message })
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.setHeader(HEADER.error, reason)
  if (reason === 'overloaded') res.setHeader('retry-after', '1')
  res.end(body)
}

/**
 * Refuses a request whose body broke a limit (or was not the one signed). The rest of the body is
 * not read: the connection closes after the answer.
 */
export function refuseBody(res: ServerResponse, err: unknown): void {
  if (!(err instanceof BodyRejected)) {
    fail(res, ...reasonOf(err))
    return
  }
  res.setHeader('connection', 'close')
  const reason: ErrorReason = err.status === 401 ? 'unauthorized' : err.status === 413 ? 'invalid-value' : 'bad-request'
  fail(res, reason, err.message, err.status)
}

/** The request's body within `limits`, or undefined once the request was refused (refuseBody). */
export async function bodyOrRefuse(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<Buffer | undefined> {
  try {
    return await readBody(req, limits)
  } catch (err) {
    refuseBody(res, err)
    return undefined
  }
}
