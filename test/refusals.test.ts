// Mirrors lib/refusals.ts: how a peer says no on a real HTTP server: fail's status, headers and JSON body (never a stack), a cut connection once an answer started, refuseBody/bodyOrRefuse on bodies past their limits or not the one signed, reasonOf for every error class and its message cap, errorFrame.
import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { digestOf } from '../lib/auth.js'
import { BodyRejected } from '../lib/body.js'
import { ConflictError, InvalidKeyError, InvalidValueError, LoadError, LoadTimeoutError, PeercacheError } from '../lib/errors.js'
import { FrameParser } from '../lib/frames.js'
import { OverloadedError } from '../lib/overload.js'
import { MisdirectedError } from '../lib/owner.js'
import { type ErrorReason, HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { bodyOrRefuse, errorFrame, fail, reasonOf, refuseBody, STATUS } from '../lib/refusals.js'
import { httpServer } from './helpers/http-server.js'
import type { TapTest } from './helpers/tap.js'

/** A server answering each request with `answer`; `ask` sends one request and reads all of its answer. */
async function serving(t: TapTest, answer: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>) {
  const { url } = await httpServer(t, (req, res) => void answer(req, res))
  return async (init: { method?: 'GET' | 'POST'; body?: Buffer; headers?: Record<string, string> } = {}) => {
    const r = await request(url, init)
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
  }
}

t.test('fail: the reason’s status, the protocol headers and a JSON body with the message', async (t) => {
  let reason: ErrorReason = 'unknown-group'
  let status: number | undefined
  const ask = await serving(t, (_req, res) => fail(res, reason, `because of ${reason}`, status))
  for (const r of Object.keys(STATUS) as ErrorReason[]) {
    reason = r
    const a = await ask()
    t.equal(a.status, STATUS[r], `${r}: status ${STATUS[r]}`)
    t.match(a.headers, { 'content-type': 'application/json', [HEADER.error]: r, [HEADER.protocol]: String(PROTOCOL_VERSION) })
    t.equal(Number(a.headers['content-length']), Buffer.byteLength(a.text))
    t.same(JSON.parse(a.text), { error: r, message: `because of ${r}` })
    t.equal(a.headers['retry-after'], r === 'overloaded' ? '1' : undefined, `${r}: retry-after only when overloaded`)
  }
  reason = 'bad-request'
  status = 413
  const a = await ask()
  t.equal(a.status, 413, 'an explicit status wins over the reason’s')
  t.equal(a.headers[HEADER.error], 'bad-request')
})

t.test('STATUS: every reason is an error status, 4xx for the asker’s fault, 5xx for this peer’s', async (t) => {
  for (const [reason, status] of Object.entries(STATUS)) t.ok(status >= 400 && status < 600, `${reason}: ${status}`)
  t.same([STATUS['bad-request'], STATUS.unauthorized, STATUS['unknown-group'], STATUS.misdirected], [400, 401, 404, 421])
  t.same([STATUS.load, STATUS.internal, STATUS.closing, STATUS['load-timeout']], [500, 500, 503, 504])
})

t.test('fail once the answer has started: the connection is cut (a half answer must not pass for a whole one)', async (t) => {
  const ask = await serving(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100' })
    res.write('partial')
    fail(res, 'internal', 'too late')
  })
  const err = await ask().then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err, 'the asker sees a broken answer, not a 200')
})

t.test('reasonOf: each error class travels as its reason; the origin’s message, never a stack', async (t) => {
  const cases: [unknown, ErrorReason, string][] = [
    [new LoadTimeoutError('g', 'k', 'over 5 s'), 'load-timeout', 'over 5 s'],
    [new LoadError('g', 'k', 'db down', { cause: new Error('inner') }), 'load', 'db down'],
    [new InvalidValueError('g', 'k', 'not bytes'), 'invalid-value', 'not bytes'],
    [new InvalidKeyError('g', '', 'keys are not empty'), 'bad-request', 'peercache: group "g": invalid key "": keys are not empty'],
    [new OverloadedError('g', 1000), 'overloaded', 'peercache: group "g": too many origin loads for peers under way; retry after 1000 ms'],
    [new MisdirectedError('not mine'), 'misdirected', 'not mine'],
    [new ConflictError('g', 'k', 5, { ifVersion: 4 }), 'conflict', new ConflictError('g', 'k', 5, { ifVersion: 4 }).message],
    [new PeercacheError('other'), 'internal', 'other'],
    [new Error('plain'), 'internal', 'plain'],
    ['a string', 'internal', 'a string'],
    [undefined, 'internal', 'undefined'],
    [{ message: 42 }, 'internal', '42'],
  ]
  for (const [err, reason, message] of cases) t.same(reasonOf(err), [reason, message], `${(err as Error)?.constructor?.name}: ${reason}`)
  t.notMatch(reasonOf(new Error('x'))[1], /\n\s+at /, 'no stack')
})

t.test('reasonOf: an origin’s message is cut at 1000 characters (logs, not a channel for megabytes)', async (t) => {
  const long = 'x'.repeat(50_000)
  t.equal(reasonOf(new LoadError('g', 'k', long))[1].length, 1000)
  t.equal(reasonOf(new LoadTimeoutError('g', 'k', long))[1].length, 1000)
  t.equal(reasonOf(new Error(long))[1].length, 1000)
})

t.test('errorFrame: the reason as the frame’s status, the message as its payload, at the key’s index', async (t) => {
  const [f] = new FrameParser().push(Buffer.concat(errorFrame(17, new LoadError('g', 'k', 'db down'))))
  t.match(f, { index: 17, status: 'load', expiresAt: 0, version: 0 })
  t.equal(f?.payload.toString(), 'db down')
  const [m] = new FrameParser().push(Buffer.concat(errorFrame(1, new MisdirectedError('not mine'))))
  t.equal(m?.status, 'internal', 'a reason with no frame code (misdirected: a PUT’s, never a get’s) travels as internal')
  t.equal(m?.payload.toString(), 'not mine')
})

t.test('refuseBody: each rejected body as its status and reason, the connection closed after the answer', async (t) => {
  let err: unknown
  const ask = await serving(t, (_req, res) => refuseBody(res, err))
  const cases: [BodyRejected, number, ErrorReason][] = [
    [new BodyRejected(413, 'the body is larger than 10 bytes'), 413, 'invalid-value'],
    [new BodyRejected(401, 'the body is not the one signed'), 401, 'unauthorized'],
    [new BodyRejected(400, 'the body was cut short'), 400, 'bad-request'],
  ]
  for (const [rejected, status, reason] of cases) {
    err = rejected
    const a = await ask()
    t.equal(a.status, status)
    t.equal(a.headers[HEADER.error], reason)
    t.equal(a.headers.connection, 'close', 'the rest of the body is not read: the connection closes')
    t.same(JSON.parse(a.text), { error: reason, message: rejected.message })
  }
  err = new LoadError('g', 'k', 'db down')
  const other = await ask()
  t.equal(other.status, 500, 'anything else: as reasonOf says')
  t.equal(other.headers[HEADER.error], 'load')
  t.not(other.headers.connection, 'close', 'and the connection is kept')
})

t.test('bodyOrRefuse: the body within its limits; else undefined, the request refused', async (t) => {
  const got: (Buffer | undefined)[] = []
  const ask = await serving(t, async (req, res) => {
    const digest = req.headers['x-test-digest'] as string | undefined
    const body = await bodyOrRefuse(req, res, { maxBytes: 16, digest })
    got.push(body)
    if (body !== undefined) res.end(`read ${body.length}`)
  })
  const ok = await ask({ method: 'POST', body: Buffer.from('0123456789') })
  t.same([ok.status, ok.text], [200, 'read 10'])
  t.same(got.at(-1), Buffer.from('0123456789'))

  const big = await ask({ method: 'POST', body: Buffer.alloc(17) })
  t.same([big.status, big.headers[HEADER.error], big.headers.connection], [413, 'invalid-value', 'close'], 'past maxBytes: 413')
  t.equal(got.at(-1), undefined)

  const signed = Buffer.from('signed')
  const good = await ask({ method: 'POST', body: signed, headers: { 'x-test-digest': digestOf(signed) } })
  t.same([good.status, good.text], [200, 'read 6'], 'the body that was signed')
  const forged = await ask({ method: 'POST', body: Buffer.from('forged'), headers: { 'x-test-digest': digestOf(signed) } })
  t.same([forged.status, forged.headers[HEADER.error]], [401, 'unauthorized'], 'another body than the one signed: 401')
  t.equal(got.at(-1), undefined)
  t.equal(got.length, 4, 'every request was read or refused once')
})
