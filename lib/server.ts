// The server side of the peer protocol: a node:http request listener. A request that comes from a
// peer is answered from this process's caches or its own loader, never forwarded again, so two
// peers that disagree about an owner during a membership change cannot bounce a key between them.
// About 300 lines: the routes and the small answers (get, put, delete, clear, health); the batch,
// lock, publish and debug answers are in their own files.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { AUTH_HEADER, type Auth, EMPTY_DIGEST } from './auth.js'
import { answerBatch } from './batch-answer.js'
import { ConflictError } from './errors.js'
import { answerHeap, answerProfile } from './profile.js'
import { type ChangeNote, HEADER, PROTOCOL_VERSION, type PutMeta, type ServedGroup, type WriteCondition } from './protocol.js'
import { answerLock, type LockRoutes } from './lock-routes.js'
import { answerPublish, type PubSub } from './pubsub.js'
import { bodyOrRefuse, fail, reasonOf } from './refusals.js'
import { versionHeader } from './versions.js'

export interface HandlerOptions {
  basePath: string
  group(name: string): ServedGroup | undefined
  closing(): boolean
  /** Why this peer is not ready (the health endpoint answers 503 with it), or undefined when it is. Default: closing() decides. */
  notReady?(): 'starting' | 'closing' | undefined
  /** A peer announced that it is leaving (POST {basePath}leave, from its x-peercache-from URL). */
  left(peer: string): void
  /** A peer says this one missed writes it could not replay (POST {basePath}resync): drop every value held. */
  resync(peer: string): void
  /** When given, every request but an unsigned health probe must be signed (else 401, nothing runs). */
  auth?: Auth
  /** How far ahead of this clock a version may be, in ms (the auth skew): past it, 400 and nothing changes. */
  maxVersionAheadMs: number
  /** Most bytes of values in one batch answer. */
  maxBatchBytes: number
  /** Whether `GET {basePath}debug/profile` and `debug/heap` answer (profile.ts); 404 when not. */
  profiling: boolean
  /** Publish/subscribe: POST {basePath}publish hands a message to this process's subscribers. */
  pubsub?: PubSub
  /** The lease locks this peer hosts (POST {basePath}lock-acquire, lock-release, lock-record). */
  locks?: LockRoutes
}

/** A node:http request listener; `next` (Express/Connect style) gets requests outside the base path. */
export type Handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

export function createHandler(options: HandlerOptions): Handler {
  const { basePath } = options
  const route = routeWith(options)
  return (req, res, next) => {
    if (!(req.url ?? '').startsWith(basePath)) {
      if (next) return next()
      return fail(res, 'bad-request', `not a peercache path (expected ${basePath}…)`, 404)
    }
    // A bad request must never throw out of the listener: that would crash the process.
    try {
      route(req, res)
    } catch (err) {
      fail(res, ...reasonOf(err))
    }
  }
}

function routeWith(options: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { basePath, auth } = options
  return (req, res) => {
    const url = req.url ?? ''
    // While closing, every answer ends its connection: a peer probing us every few hundred ms
    // would otherwise keep a keep-alive socket busy forever and server.close() would never finish.
    if (options.closing()) res.setHeader('connection', 'close')
    const version = req.headers[HEADER.protocol]
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
      return fail(res, 'protocol', `this peer speaks protocol ${PROTOCOL_VERSION}, the request ${String(version)}`)
    }
    const q = url.indexOf('?', basePath.length)
    const parts = url.slice(basePath.length, q === -1 ? undefined : q).split('/')
    const digest = req.headers[AUTH_HEADER.digest]
    if (parts.length === 1 && parts[0] === 'health') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(res, req.method, 'GET, HEAD')
      // An unsigned probe (a load balancer's, Kubernetes') learns only up or closing; a signed one
      // is checked, so that a peer with the wrong secret sees this one as down.
      if (auth && req.headers[AUTH_HEADER.signature] !== undefined && !authentic(auth, req, res, digest)) return
      return answerHealth(res, options)
    }
    // Nothing else runs for a request that is not signed: no load, no store, no drop, no leave.
    if (auth && !authentic(auth, req, res, digest)) return
    const signed = auth && typeof digest === 'string' ? digest : auth ? EMPTY_DIGEST : undefined
    if (parts.length === 1 && (parts[0] === 'leave' || parts[0] === 'resync')) {
      if (req.method !== 'POST') return notAllowed(res, req.method, 'POST')
      const from = req.headers[HEADER.from]
      if (typeof from !== 'string') return fail(res, 'bad-request', `${parts[0]} needs ${HEADER.from}`)
      if (parts[0] === 'leave') options.left(from)
      else options.resync(from)
      res.statusCode = 204
      return void res.end()
    }
    if (parts.length === 2 && parts[0] === 'debug') return answerDebug(req, res, parts[1]!, options)
    if (parts.length === 1 && parts[0]!.startsWith('lock-') && options.locks !== undefined) {
      if (req.method !== 'POST') return notAllowed(res, req.method, 'POST')
      if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
      return void answerLock(parts[0]!.slice('lock-'.length), req, res, options.locks, signed)
    }
    if (parts.length === 1 && parts[0] === 'publish' && options.pubsub !== undefined) {
      if (req.method !== 'POST') return notAllowed(res, req.method, 'POST')
      if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
      return void answerPublish(options.pubsub, req, res, signed)
    }
    // The stream's upgrade request, here because no 'upgrade' listener took it (Node then hands it to
    // the request listener): refused, so the asker fetches by batch.
    if (parts.length === 1 && parts[0] === 'stream')
      return fail(
        res,
        'bad-request',
        'no peer stream on this server (attach its upgrade listener: peer.attach(server)); fetch by batch',
        501,
      )
    if (parts.length === 1 && parts[0] === 'batch') {
      if (req.method !== 'POST') return notAllowed(res, req.method, 'POST')
      if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
      return void answerBatch(options, req, res, signed)
    }
    if (parts.length !== 2) return fail(res, 'bad-request', 'expected {basePath}{group}/{key}')
    if (options.closing()) return fail(res, 'closing', 'this peer is shutting down')
    const [groupName, encodedKey] = parts as [string, string]
    const group = options.group(groupName)
    if (group === undefined) return fail(res, 'unknown-group', `no group "${groupName}" on this peer`)
    let key: string
    try {
      key = decodeURIComponent(encodedKey)
    } catch {
      return fail(res, 'bad-request', 'the key is not valid percent-encoded UTF-8')
    }
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return void answerGet(group, key, req, res)
      case 'PUT':
        return void answerPut(group, key, req, res, options.maxVersionAheadMs, signed)
      case 'DELETE': {
        if (key === '') return answerClear(group, req, res)
        const before = versionHeader(req.headers[HEADER.version], options.maxVersionAheadMs)
        const note = changeNote(req.headers)
        if (before === null || note === null)
          return fail(
            res,
            'bad-request',
            `bad ${HEADER.version} or ${HEADER.change} header: a version is a safe integer not ahead of this clock`,
          )
        const line = group.drop(key, before, note)
        res.statusCode = 204
        res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
        res.setHeader(HEADER.version, String(line))
        return void res.end()
      }
      default:
        return notAllowed(res, req.method, 'GET, HEAD, PUT, DELETE')
    }
  }
}

/** `GET {basePath}debug/profile?seconds=N` and `GET {basePath}debug/heap`, when profiling is on. */
function answerDebug(req: IncomingMessage, res: ServerResponse, what: string, options: HandlerOptions): void {
  if (!options.profiling || (what !== 'profile' && what !== 'heap'))
    fail(res, 'bad-request', 'no such debug endpoint (profiles need new Peer({ profiling: true }))', 404)
  else if (req.method !== 'GET') notAllowed(res, req.method, 'GET')
  else if (what === 'heap') answerHeap(res)
  else void answerProfile(req, res, options.closing).catch((err) => fail(res, ...reasonOf(err)))
}

/**
 * How far ahead of this peer's clock a clear's epoch may be, in ms: the clocks' skew. An epoch is
 * checked because every version up to it is refused afterwards: one far in the future would empty
 * the group for good.
 */
const CLEAR_MAX_AHEAD_MS = 60_000

/** DELETE `{basePath}{group}/` (the empty key, which no key can be): clear the group up to the epoch in `x-peercache-version`. */
function answerClear(group: ServedGroup, req: IncomingMessage, res: ServerResponse): void {
  const epoch = versionHeader(req.headers[HEADER.version], CLEAR_MAX_AHEAD_MS)
  if (epoch === undefined || epoch === null) {
    fail(res, 'bad-request', `a clear needs a plausible ${HEADER.version} (its epoch)`)
    return
  }
  const line = group.clear(epoch)
  res.statusCode = 204
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  res.setHeader(HEADER.version, String(line))
  res.end()
}

/** Checks a request's signature; answers 401 (and closes: its body is not read) when it fails. */
function authentic(auth: Auth, req: IncomingMessage, res: ServerResponse, digest: string | string[] | undefined): boolean {
  const from = req.headers[HEADER.from]
  const failure =
    typeof digest === 'object' || typeof from === 'object'
      ? 'malformed'
      : auth.check(
          { method: req.method ?? '', path: req.url ?? '', from: from ?? '', digest: digest ?? EMPTY_DIGEST },
          req.headers[AUTH_HEADER.signature],
        )
  if (failure === undefined) return true
  res.setHeader('connection', 'close')
  fail(res, 'unauthorized', `request refused: ${failure}`)
  return false
}

function notAllowed(res: ServerResponse, method: string | undefined, allow: string): void {
  res.setHeader('allow', allow)
  fail(res, 'bad-request', `method ${method} is not allowed`, 405)
}

async function answerPut(
  group: ServedGroup,
  key: string,
  req: IncomingMessage,
  res: ServerResponse,
  maxVersionAheadMs: number,
  digest: string | undefined,
): Promise<void> {
  const h = req.headers
  const replica = h[HEADER.replica] === '1'
  const absent = h[HEADER.absent] === '1'
  const version = versionHeader(h[HEADER.version], maxVersionAheadMs)
  const expiresAt = optionalInteger(h[HEADER.expires])
  const ttlMs = optionalInteger(h[HEADER.ttl])
  const condition = writeCondition(h[HEADER.ifVersion], maxVersionAheadMs)
  const note = changeNote(h)
  if (
    version === null ||
    expiresAt === null ||
    ttlMs === null ||
    condition === null ||
    note === null ||
    (replica && version === undefined)
  ) {
    res.setHeader('connection', 'close') // the body is not read
    return fail(res, 'bad-request', 'bad or missing metadata headers (a version is a safe integer not ahead of this clock)')
  }
  const body = await bodyOrRefuse(req, res, { maxBytes: group.maxValueBytes, digest })
  if (body === undefined) return
  try {
    const meta: PutMeta = replica
      ? { replica: true, version: version!, expiresAt: expiresAt ?? 0, absent, note }
      : { replica: false, ttlMs, absent, condition, note }
    const stored = await group.put(key, body, meta)
    res.statusCode = 204
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    res.setHeader(HEADER.version, String(stored.version))
    if (stored.expiresAt !== 0) res.setHeader(HEADER.expires, String(stored.expiresAt))
    if (stored.unreachable.length > 0) res.setHeader(HEADER.unreachable, stored.unreachable.join(','))
    res.end()
  } catch (err) {
    if (err instanceof ConflictError && err.currentVersion !== undefined) res.setHeader(HEADER.version, String(err.currentVersion))
    fail(res, ...reasonOf(err))
  }
}

/** The change a write is part of (x-peercache-change, -origin; a DELETE's set names its expiry): undefined when not said, null when malformed (400). */
function changeNote(h: IncomingHttpHeaders): ChangeNote | undefined | null {
  const kind = h[HEADER.change]
  if (kind === undefined) return undefined
  const origin = h[HEADER.origin]
  const expiresAt = optionalInteger(h[HEADER.expires])
  if ((kind !== 'set' && kind !== 'remove') || typeof origin !== 'string' || origin.length > 2048 || expiresAt === null) return null
  return { kind, origin, expiresAt }
}

/** A set's x-peercache-if-version: undefined when absent, `absent` or a plausible version, null otherwise (400). */
function writeCondition(value: string | string[] | undefined, maxVersionAheadMs: number): WriteCondition | undefined | null {
  if (value === 'absent') return { ifAbsent: true }
  const version = versionHeader(value, maxVersionAheadMs)
  return version === undefined || version === null ? version : { ifVersion: version }
}

/** A header of ms (an expiry, a time to live): undefined when absent, null unless decimal digits of a safe integer. */
function optionalInteger(v: string | string[] | undefined): number | undefined | null {
  if (v === undefined) return undefined
  return typeof v === 'string' && /^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : null
}

async function answerGet(group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The asker hanging up (its own caller aborted, or it timed out) takes its wait off the flight.
  const ac = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) ac.abort()
  }
  res.once('close', onClose)
  try {
    const entry = await group.serve(key, () => ac.signal)
    res.statusCode = 200
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', entry.bytes.byteLength)
    res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
    res.setHeader(HEADER.version, String(entry.version))
    if (entry.absent) res.setHeader(HEADER.absent, '1')
    if (entry.expiresAt !== 0) res.setHeader(HEADER.expires, String(entry.expiresAt))
    res.end(req.method === 'HEAD' ? undefined : entry.bytes)
  } catch (err) {
    if (ac.signal.aborted) return // nobody to answer
    fail(res, ...reasonOf(err))
  } finally {
    res.off('close', onClose)
  }
}

/** Why a peer that is not ready says so on its health endpoint. */
const NOT_READY = {
  starting: 'the membership is not known yet (waiting for the first setPeers, e.g. a discovery answer)',
  closing: 'this peer is shutting down',
}

/**
 * 200 `{ ok: true, ready: true }` while serving; 503 `{ ok: false, ready: false, state, reason }`
 * while starting (no membership yet) and from close() on: a readiness probe sends no traffic then.
 */
function answerHealth(res: ServerResponse, options: HandlerOptions): void {
  const state = options.notReady?.() ?? (options.closing() ? 'closing' : undefined)
  res.statusCode = state === undefined ? 200 : 503
  res.setHeader('content-type', 'application/json')
  res.setHeader(HEADER.protocol, String(PROTOCOL_VERSION))
  const body = state === undefined ? { ok: true, ready: true } : { ok: false, ready: false, state, reason: NOT_READY[state] }
  res.end(JSON.stringify({ ...body, protocol: PROTOCOL_VERSION }))
}
