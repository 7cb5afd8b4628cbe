// The server side of the peer protocol: a node:http request listener. A request that comes from a
// peer is answered from this process's caches or its own loader, never forwarded again, so two
// peers that disagree about an owner during a membership change cannot bounce a key between them.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Entry } from './cache.js'
import { InvalidKeyError, InvalidValueError, LoadError } from './errors.js'
import { type ErrorReason, HEADER, PROTOCOL_VERSION } from './protocol.js'

/** What the server needs of a group. */
export interface ServedGroup {
  /** The entry for `key`, from the caches or a local load (never from another peer). */
  serve(key: string, signal: AbortSignal): Promise<Entry>
}

export interface HandlerOptions {
  basePath: string
  group(name: string): ServedGroup | undefined
  closing(): boolean
}

/** A node:http request listener; `next` (Express/Connect style) gets requests outside the base path. */
export type Handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

const STATUS: Record<ErrorReason, number> = {
  'bad-request': 400,
  protocol: 400,
  'unknown-group': 404,
  load: 500,
  'invalid-value': 500,
  closing: 503,
  internal: 500,
}

export function createHandler(options: HandlerOptions): Handler {
  const { basePath } = options
  return (req, res, next) => {
    const url = req.url ?? ''
    if (!url.startsWith(basePath)) {
      if (next) return next()
      return fail(res, 'bad-request', `not a peercache path (expected ${basePath}…)`, 404)
    }
    const version = req.headers[HEADER.protocol]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      return fail(res, 'protocol', `this peer speaks protocol ${PROTOCOL_VERSION}, the request ${String(version)}`)
    }
    const q = url.indexOf('?', basePath.length)
    const parts = url.slice(basePath.length, q === -1 ? undefined : q).split('/')
    if (parts.length === 1 && parts[0] === 'health') return health(req, res, options)
    if (parts.length !== 2) return fail(res, 'bad-request', 'expected {basePath}{group}/{key}')
    if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return fail(res, 'bad-request', `method ${req.method} is not allowed`, 405)
    }
    const [groupName, encodedKey] = parts as [string, string]
    const group = options.group(groupName)
    if (group === undefined) return fail(res, 'unknown-group', `no group "${groupName}" on this peer`)
    let key: string
    try {
      key = decodeURIComponent(encodedKey)
    } catch {
      return fail(res, 'bad-request', 'the key is not valid percent-encoded UTF-8')
    }
    void serveKey(group, key, req, res)
  }
}

async function serveKey(group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The asker hanging up (its own caller aborted, or it timed out) takes its wait off the flight.
  const ac = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) ac.abort()
  }
  res.once('close', onClose)
  try {
    const entry = await group.serve(key, ac.signal)
    res.statusCode = 200
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', entry.bytes.byteLength)
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    res.setHeader(HEADER.version, String(entry.version))
    if (entry.expiresAt !== 0) res.setHeader(HEADER.expires, String(entry.expiresAt))
    res.end(req.method === 'HEAD' ? undefined : entry.bytes)
  } catch (err) {
    if (ac.signal.aborted) return // nobody to answer
    if (err instanceof LoadError) return fail(res, 'load', err.originMessage)
    if (err instanceof InvalidValueError) return fail(res, 'invalid-value', err.message)
    if (err instanceof InvalidKeyError) return fail(res, 'bad-request', err.message)
    fail(res, 'internal', (err as Error)?.message ?? String(err))
  } finally {
    res.off('close', onClose)
  }
}

function health(_req: IncomingMessage, res: ServerResponse, options: HandlerOptions): void {
  const closing = options.closing()
  res.statusCode = closing ? 503 : 200
  res.setHeader('content-type', 'application/json')
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.end(JSON.stringify({ ok: !closing, protocol: PROTOCOL_VERSION }))
}

function fail(res: ServerResponse, reason: ErrorReason, message: string, status = STATUS[reason]): void {
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
  res.end(body)
}
