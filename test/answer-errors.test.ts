// Mirrors lib/answer-errors.ts: each answer a peer may give other than success (read from a real HTTP server, refusals.ts writing it) becomes the typed error it stands for; a failed connection becomes PeerUnavailableError.
import t from 'tap'
import { request } from 'undici'
import { answerError, transportError } from '../lib/answer-errors.js'
import { InvalidValueError, LoadError, LoadTimeoutError, PeercacheError, PeerUnavailableError } from '../lib/errors.js'
import type { ErrorReason } from '../lib/protocol.js'
import { fail } from '../lib/refusals.js'
import { httpServer } from './helpers/http-server.js'
import { freePort } from './helpers/net.js'
import type { TapTest } from './helpers/tap.js'

const PEER = 'http://peer-b.test'

/** A real server: `/fail/<reason>?m=<message>` answers with refusals.fail; `/raw/<status>` with a plain-text body and no reason. */
async function answers(t: TapTest) {
  const { url } = await httpServer(t, (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const [, kind, arg] = u.pathname.split('/')
    if (kind === 'fail') return fail(res, arg as ErrorReason, u.searchParams.get('m') ?? '')
    res.statusCode = Number(arg)
    res.end(u.searchParams.get('m') ?? '')
  })
  return async (path: string) => {
    const r = await request(`${url}${path}`)
    return { statusCode: r.statusCode, headers: r.headers as Record<string, string>, body: Buffer.from(await r.body.arrayBuffer()) }
  }
}

t.test('the reasons an origin gave travel as the errors the origin raised, naming group, key and peer', async (t) => {
  const ask = await answers(t)
  const load = answerError(PEER, 'users', 'alice', await ask('/fail/load?m=db%20down'))
  t.type(load, LoadError)
  t.notOk(load instanceof LoadTimeoutError, 'a plain load error is not a timeout')
  t.match(load, { code: 'PEERCACHE_ERR_LOAD', group: 'users', key: 'alice', peer: PEER, originMessage: 'db down' })

  const slow = answerError(PEER, 'users', 'bob', await ask('/fail/load-timeout?m=over%205000%20ms'))
  t.type(slow, LoadTimeoutError)
  t.match(slow, { code: 'PEERCACHE_ERR_LOAD_TIMEOUT', group: 'users', key: 'bob', peer: PEER, originMessage: 'over 5000 ms' })

  const bad = answerError(PEER, 'users', 'carol', await ask('/fail/invalid-value?m=not%20bytes'))
  t.type(bad, InvalidValueError)
  t.match(bad, { code: 'PEERCACHE_ERR_INVALID_VALUE', group: 'users', key: 'carol', reason: `not bytes (at ${PEER})` })
})

t.test('every other reason is the peer unavailable, with the reason it gave (try elsewhere)', async (t) => {
  const ask = await answers(t)
  const reasons: [ErrorReason, number][] = [
    ['unknown-group', 404],
    ['closing', 503],
    ['overloaded', 503],
    ['misdirected', 421],
    ['unauthorized', 401],
    ['protocol', 400],
    ['internal', 500],
  ]
  for (const [reason, status] of reasons) {
    const e = answerError(PEER, 'g', 'k', await ask(`/fail/${reason}?m=because`))
    t.type(e, PeerUnavailableError, reason)
    t.match(e, {
      code: 'PEERCACHE_ERR_PEER_UNAVAILABLE',
      peer: PEER,
      reason,
      message: `peercache: peer ${PEER} unavailable: HTTP ${status} ${reason}: because`,
    })
  }
})

t.test('an answer that is not peercache (no reason header, not JSON) is shown as it came, with an http-<status> reason', async (t) => {
  const ask = await answers(t)
  const e = answerError(PEER, 'g', 'k', await ask('/raw/502?m=%3Chtml%3EBad%20Gateway%3C%2Fhtml%3E'))
  t.type(e, PeerUnavailableError)
  t.match(e, { reason: 'http-502', message: /HTTP 502: <html>Bad Gateway<\/html>$/ })
  const json = answerError(PEER, 'g', 'k', await ask('/raw/500?m=%7B%22message%22%3A42%7D'))
  t.match(json, { reason: 'http-500', message: /HTTP 500: \{"message":42\}$/ }, 'JSON whose message is not a string: the body as it came')
})

t.test('a long body is cut at 500 characters: a peer cannot fill a log through an error', async (t) => {
  const ask = await answers(t)
  const e = answerError(PEER, 'g', 'k', await ask(`/raw/500?m=${'x'.repeat(5000)}`)) as PeerUnavailableError
  t.match(e.message, /HTTP 500: x+$/)
  t.equal(e.message.split(': ').at(-1)!.length, 500)
})

t.test('an origin message over 500 characters (refusals allows 1000) still reaches the asker as the message', async (t) => {
  const ask = await answers(t)
  const long = 'y'.repeat(600)
  const e = answerError(PEER, 'g', 'k', await ask(`/fail/load?m=${long}`)) as LoadError
  t.equal(e.originMessage, long)
})

t.test('transportError: a refused connection is the peer unavailable, with the cause and no reason (it may be down)', async (t) => {
  const port = await freePort()
  const err = await request(`http://127.0.0.1:${port}/`).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err, 'nothing listens on the port')
  const e = transportError(PEER, err)
  t.type(e, PeerUnavailableError)
  t.type(e, PeercacheError)
  t.match(e, { peer: PEER, reason: undefined, cause: err, message: /unavailable: ECONNREFUSED: / })
})

t.test('transportError: whatever was thrown, never a crash: no code, a string, undefined', async (t) => {
  t.match(transportError(PEER, new Error('boom')), { message: `peercache: peer ${PEER} unavailable: error: boom` })
  t.match(transportError(PEER, 'just a string'), { message: /unavailable: error: just a string$/ })
  t.match(transportError(PEER, undefined), { message: /unavailable: error: undefined$/, cause: undefined })
  t.match(transportError(PEER, null), { message: /unavailable: error: null$/ })
})
