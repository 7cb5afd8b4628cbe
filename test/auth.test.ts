// Request signing: a signed request passes once; anything changed, stale, replayed or signed with
// another secret is refused with its reason; rotation accepts every listed secret; the replay memory
// is bounded and stays safe when full. The clock is a variable, so nothing here waits.
import t from 'tap'
import { AUTH_HEADER, Auth, type AuthOptions, EMPTY_DIGEST, type SignedRequest, bodyMatches, digestOf } from '../lib/auth.js'
import { AUTH_DEFAULTS } from '../lib/defaults.js'
import { InvalidOptionError } from '../lib/errors.js'

const SECRET = 'a-shared-secret-of-32-bytes-long'
const OTHER = 'another-secret-of-32-bytes-long!'
const FROM = 'http://10.0.0.5:7001'

/** An Auth on a clock the test moves. */
function clocked(options: AuthOptions, start = 1_750_000_000_000) {
  const clock = { now: start }
  return { auth: new Auth(options, () => clock.now), clock }
}

/** Signs a request with `signer` and returns what the receiver sees. */
function signed(signer: Auth, method = 'GET', path = '/_peercache/g/k', body?: Uint8Array) {
  const headers = signer.sign(method, path, FROM, body)
  const request: SignedRequest = { method, path, from: FROM, digest: headers[AUTH_HEADER.digest] ?? EMPTY_DIGEST }
  return { headers, request, header: headers[AUTH_HEADER.signature] }
}

t.test('a signed request passes once, and its replay is refused', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  const { request, header } = signed(auth)
  t.equal(auth.check(request, header), undefined)
  t.equal(auth.check(request, header), 'replayed')
  t.equal(auth.remembered, 1)
})

t.test('two identical requests in the same millisecond both pass (the nonce tells them apart)', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  const a = signed(auth)
  const b = signed(auth)
  t.not(a.header, b.header)
  t.equal(auth.check(a.request, a.header), undefined)
  t.equal(auth.check(b.request, b.header), undefined)
})

t.test('each signed field is covered: changing any one is a bad signature', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  const changes: [string, (r: SignedRequest) => SignedRequest][] = [
    ['method', (r) => ({ ...r, method: 'DELETE' })],
    ['path', (r) => ({ ...r, path: '/_peercache/g/other' })],
    ['query', (r) => ({ ...r, path: `${r.path}?x=1` })],
    ['sender', (r) => ({ ...r, from: 'http://10.0.0.6:7001' })],
    ['body digest', (r) => ({ ...r, digest: digestOf(Buffer.from('{"admin":true}')) })],
  ]
  for (const [field, change] of changes) {
    const { request, header } = signed(auth, 'PUT', '/_peercache/g/k', Buffer.from('value'))
    t.equal(auth.check(change(request), header), 'bad-signature', field)
    t.equal(auth.check(request, header), undefined, `${field}: the untouched request still passes`)
  }
  // The timestamp and nonce are in the header: changing them breaks the signature too.
  const { request, header } = signed(auth)
  const [time, nonce, sig] = header!.split('.') as [string, string, string]
  t.equal(auth.check(request, `${Number(time) - 1}.${nonce}.${sig}`), 'bad-signature', 'timestamp')
  const otherNonce = `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}`
  t.equal(auth.check(request, `${time}.${otherNonce}.${sig}`), 'bad-signature', 'nonce')
})

t.test('a replay re-spelled (a non-canonical base64 of the same signature) is refused, not taken as new', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  const { request, header } = signed(auth)
  t.equal(auth.check(request, header), undefined)
  const [time, nonce, sig] = header!.split('.') as [string, string, string]
  // The last of 43 characters holds 4 bits of the MAC and 2 unused ones: these spell the same bytes.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(sig.at(-1)!)
  const respelled = [1, 2, 3].map((d) => `${time}.${nonce}.${sig.slice(0, -1)}${alphabet[(last & ~3) | ((last + d) & 3)]}`)
  for (const h of respelled) {
    t.not(h, header)
    t.equal(auth.check(request, h), 'malformed', h.slice(-3))
  }
})

t.test('a request signed with another secret is refused', async (t) => {
  const { auth: receiver } = clocked({ secret: SECRET })
  const { auth: stranger } = clocked({ secret: OTHER })
  const { request, header } = signed(stranger)
  t.equal(receiver.check(request, header), 'bad-signature')
  t.equal(receiver.remembered, 0, 'a refused signature is not remembered')
})

t.test('rotation: the first secret signs, every listed secret is accepted', async (t) => {
  const { auth: old } = clocked({ secret: SECRET })
  const { auth: rolling } = clocked({ secrets: [OTHER, SECRET] })
  const { auth: rolled } = clocked({ secret: OTHER })
  const fromOld = signed(old)
  t.equal(rolling.check(fromOld.request, fromOld.header), undefined, 'a process still on the old secret is accepted during the roll')
  const fromRolling = signed(rolling)
  t.equal(rolled.check(fromRolling.request, fromRolling.header), undefined, 'the rolling process signs with the new one')
  t.equal(old.check(signed(rolling).request, signed(rolling).header), 'bad-signature', 'which the old-only process does not know')
  const again = signed(old)
  t.equal(rolled.check(again.request, again.header), 'bad-signature', 'once rolled, the old secret is refused')
})

t.test('timestamps outside the skew are stale, either way', async (t) => {
  const { auth: sender, clock: senderClock } = clocked({ secret: SECRET })
  const { auth: receiver } = clocked({ secret: SECRET, maxSkewMs: 2000 })
  senderClock.now -= 2001
  const late = signed(sender)
  t.equal(receiver.check(late.request, late.header), 'stale', 'signed 2001 ms ago')
  senderClock.now += 2001 * 2
  const early = signed(sender)
  t.equal(receiver.check(early.request, early.header), 'stale', 'signed 2001 ms in the future')
  senderClock.now -= 2001 - 2000
  const edge = signed(sender)
  t.equal(receiver.check(edge.request, edge.header), undefined, 'exactly 2000 ms ahead is accepted')
})

t.test('a replay is refused for as long as the signature is fresh, then as stale', async (t) => {
  const { auth, clock } = clocked({ secret: SECRET, maxSkewMs: 1000 })
  const { request, header } = signed(auth)
  t.equal(auth.check(request, header), undefined)
  clock.now += 1000
  t.equal(auth.check(request, header), 'replayed', 'at the edge of the window')
  clock.now += 1
  t.equal(auth.check(request, header), 'stale', 'past it')
})

t.test('the replay memory is bounded; when full it refuses whatever it may have forgotten', async (t) => {
  const { auth, clock } = clocked({ secret: SECRET, maxSkewMs: 1000, maxReplayEntries: 3 })
  const first = signed(auth)
  clock.now += 1
  const rest = [signed(auth), signed(auth), signed(auth)]
  t.equal(auth.check(first.request, first.header), undefined)
  for (const r of rest) t.equal(auth.check(r.request, r.header), undefined)
  t.equal(auth.remembered, 3, 'no more than maxReplayEntries')
  t.equal(auth.check(first.request, first.header), 'stale', 'the forgotten signature is still refused')
  const sameMs = signed(auth)
  clock.now += 1
  const fresh = signed(auth)
  t.equal(auth.check(fresh.request, fresh.header), undefined, 'a request signed after the forgotten one passes')
  t.equal(auth.check(sameMs.request, sameMs.header), 'stale', 'one signed no later than it does not')
  // Entries that have expired are dropped without raising the floor.
  clock.now += 5000
  const later = [signed(auth), signed(auth), signed(auth), signed(auth)]
  for (const r of later) t.equal(auth.check(r.request, r.header), undefined)
})

t.test('missing and malformed signature headers', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  const { request, header } = signed(auth)
  t.equal(auth.check(request, undefined), 'missing')
  const [time, nonce, sig] = header!.split('.') as [string, string, string]
  const bad = [
    '',
    'x',
    header!.toUpperCase(),
    `${time}.${nonce}`,
    `${time}.${nonce}.${sig}.`,
    `${time}.${nonce}.${sig.slice(1)}`,
    `-${time}.${nonce}.${sig}`,
    `${time}.${nonce}.${sig}\n`,
    `1e12.${nonce}.${sig}`,
    `${'9'.repeat(16)}.${nonce}.${sig}`,
    ` ${header}`,
  ]
  for (const h of bad) {
    const reason = auth.check(request, h)
    t.ok(reason === 'malformed' || reason === 'bad-signature', `${JSON.stringify(h.slice(0, 20))}…: ${reason}`)
  }
  t.equal(auth.check(request, [header!, header!]), 'malformed', 'a repeated header')
  t.equal(auth.check(request, header), undefined, 'none of it spent the real signature')
})

t.test('body digests: an empty body needs no header, any change is caught', async (t) => {
  const { auth } = clocked({ secret: SECRET })
  t.notOk(AUTH_HEADER.digest in auth.sign('GET', '/p', FROM), 'no digest header without a body')
  t.notOk(AUTH_HEADER.digest in auth.sign('PUT', '/p', FROM, new Uint8Array(0)), 'nor for an empty one')
  const body = Buffer.from('{"admin":false}')
  const headers = auth.sign('PUT', '/p', FROM, body)
  t.equal(headers[AUTH_HEADER.digest], digestOf(body))
  t.ok(bodyMatches(headers[AUTH_HEADER.digest]!, body))
  t.notOk(bodyMatches(headers[AUTH_HEADER.digest]!, Buffer.from('{"admin":true}')))
  t.notOk(bodyMatches('short', body))
  t.ok(bodyMatches(EMPTY_DIGEST, new Uint8Array(0)))
})

t.test('options: a secret is required and checked, limits are integers in range', async (t) => {
  t.equal(new Auth({ secret: SECRET }).maxSkewMs, AUTH_DEFAULTS.maxSkewMs)
  t.ok(new Auth({ secret: Buffer.alloc(32, 7) }), 'bytes are a secret too')
  const bad: [unknown, string][] = [
    [null, 'auth'],
    [{}, 'auth.secret'],
    [{ secrets: [] }, 'auth.secret'],
    [{ secret: 'short' }, 'auth.secret'],
    [{ secret: 42 }, 'auth.secret'],
    [{ secrets: [SECRET, 'short'] }, 'auth.secrets[1]'],
    [{ secret: SECRET, secrets: [SECRET] }, 'auth'],
    [{ secret: SECRET, maxSkewMs: 0 }, 'auth.maxSkewMs'],
    [{ secret: SECRET, maxSkewMs: 1.5 }, 'auth.maxSkewMs'],
    [{ secret: SECRET, maxSkewMs: Number.NaN }, 'auth.maxSkewMs'],
    [{ secret: SECRET, maxReplayEntries: -1 }, 'auth.maxReplayEntries'],
  ]
  for (const [options, option] of bad) {
    const err = t.throws(() => new Auth(options as AuthOptions), InvalidOptionError, JSON.stringify(options))
    t.equal((err as InvalidOptionError).option, option, 'names the option')
  }
})
