// The lock routes of the peer protocol: POST {basePath}lock-acquire, lock-release and lock-record,
// each with a small JSON body (signed with the rest of the request when auth is on) and a JSON line
// in answer. An acquire is a long-poll: the owner sends its headers at once and a blank line every
// LOCK_HEARTBEAT_MS while the caller waits, so neither side takes the silence for a dead peer, then
// the grant (or why not) as the last line. The caller hanging up takes its wait out of the queue.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BodyRejected, readBody } from './body.js'
import { ClosedError, LockError } from './errors.js'
import { checkName, type LockRecord, type LockTable, MAX_LOCK_TTL_MS } from './locks.js'
import { HEADER, LOCK_HEARTBEAT_MS, PROTOCOL_VERSION } from './protocol.js'
import { fail, refuseBody } from './refusals.js'
import { plausibleVersion } from './versions.js'

/** Most bytes of a lock request's body: a name of MAX_KEY_BYTES, an id, and numbers. */
const MAX_LOCK_BODY_BYTES = 16 * 1024

export interface LockRoutes {
  table: LockTable
  /** The peer that owns `name` now, as this process sees it. */
  ownerOf(name: string): string
  self: string
  /** `peer` was named the owner of a lock by this process, but a caller came here: check whether it is down. */
  check(peer: string): void
  /** How far ahead of this clock a token may be, in ms. */
  maxTokenAheadMs: number
}

type Body = Record<string, unknown>

export async function answerLock(
  op: string,
  req: IncomingMessage,
  res: ServerResponse,
  routes: LockRoutes,
  digest: string | undefined,
): Promise<void> {
  let body: Body
  try {
    const parsed: unknown = JSON.parse((await readBody(req, { maxBytes: MAX_LOCK_BODY_BYTES, digest })).toString('utf8'))
    if (parsed === null || typeof parsed !== 'object') throw new Error('the body is not a JSON object')
    body = parsed as Body
    checkName(body.name)
    if (op !== 'record' && (typeof body.id !== 'string' || body.id.length < 1 || body.id.length > 128))
      throw new Error('id must be a string of 1 to 128 characters')
  } catch (err) {
    if (err instanceof BodyRejected) return void refuseBody(res, err)
    return void fail(res, 'bad-request', err instanceof SyntaxError || !(err instanceof Error) ? 'the body is not JSON' : err.message)
  }
  const name = body.name as string
  if (op === 'acquire') return void acquire(name, body, res, routes)
  if (op === 'release') {
    const token = body.token
    if (token !== undefined && !validToken(token, routes))
      return void fail(res, 'bad-request', 'token must be a plausible positive integer')
    return void answer(res, await routes.table.release(name, body.id as string, token as number | undefined))
  }
  if (op === 'record') {
    const record = recordOf(body, routes)
    if (record === undefined)
      return void fail(res, 'bad-request', 'a record is { name, holder: { id, token, ttlMs } | null, lastToken, ended }')
    const conflict = routes.table.record(name, record)
    return void answer(res, conflict === undefined ? { ok: true } : { conflict })
  }
  fail(res, 'bad-request', `no lock operation ${JSON.stringify(op)}`, 404)
}

function acquire(name: string, body: Body, res: ServerResponse, routes: LockRoutes): void {
  const ttlMs = body.ttlMs
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) < 1 || (ttlMs as number) > MAX_LOCK_TTL_MS)
    return void fail(res, 'bad-request', `ttlMs must be an integer from 1 to ${MAX_LOCK_TTL_MS}`)
  const owner = routes.ownerOf(name)
  if (owner !== routes.self) {
    // The caller sees this peer as the owner, so it may think the owner it knows is down: check.
    routes.check(owner)
    return void answer(res, { error: 'misdirected', message: `${owner} owns this lock here` })
  }
  const id = body.id as string
  res.statusCode = 200
  res.setHeader('content-type', 'application/x-ndjson')
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.flushHeaders()
  const heartbeat = setInterval(() => res.write('\n'), LOCK_HEARTBEAT_MS)
  let settled = false
  const gone = new AbortController()
  res.once('close', () => {
    clearInterval(heartbeat)
    // Hung up while waiting, or before the grant was written: this wait does not hold the lease.
    // (Only this request's wait: the caller may be asking again on another connection already.)
    if (!settled) gone.abort()
  })
  routes.table.acquire(name, id, ttlMs as number, gone.signal).then(
    (grant) => {
      settled = true
      clearInterval(heartbeat)
      res.end(`${JSON.stringify(grant)}\n`)
    },
    (err) => {
      settled = true
      clearInterval(heartbeat)
      const [error, message] =
        err instanceof LockError
          ? [err.reason, err.message]
          : err instanceof ClosedError
            ? ['closing', err.message]
            : ['internal', String(err)]
      res.end(`${JSON.stringify({ error, message })}\n`)
    },
  )
}

function answer(res: ServerResponse, value: object): void {
  const text = `${JSON.stringify(value)}\n`
  res.statusCode = 200
  res.setHeader('content-type', 'application/x-ndjson')
  res.setHeader('content-length', Buffer.byteLength(text))
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.end(text)
}

function validToken(token: unknown, routes: LockRoutes): boolean {
  return typeof token === 'number' && token > 0 && plausibleVersion(token, routes.maxTokenAheadMs)
}

function recordOf(body: Body, routes: LockRoutes): LockRecord | undefined {
  const { holder, lastToken } = body
  const ended = body.ended ?? 0
  if (!validToken(lastToken, routes) || !(ended === 0 || validToken(ended, routes))) return undefined
  if (holder === null) return { holder: null, lastToken: lastToken as number, ended: ended as number }
  if (typeof holder !== 'object') return undefined
  const h = holder as Body
  if (typeof h.id !== 'string' || h.id.length > 128 || !validToken(h.token, routes)) return undefined
  if (!Number.isSafeInteger(h.ttlMs) || (h.ttlMs as number) < 0 || (h.ttlMs as number) > MAX_LOCK_TTL_MS) return undefined
  return {
    holder: { id: h.id, token: h.token as number, ttlMs: h.ttlMs as number },
    lastToken: lastToken as number,
    ended: ended as number,
  }
}
