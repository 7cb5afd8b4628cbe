// The fuzz suite (issue 11): malformed requests over raw TCP to a real peer's listen() port, across
// the categories an attacker on the network would try. Every case must be answered with a 4xx (or
// the socket closed), the server must stay up, no loader may run, nothing may be stored or marked
// down, and the heap must come back near where it started. Seeded and bounded: a failing case
// prints its seed, category and bytes; FUZZ_SEED=n reruns with another seed.
import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { AUTH_HEADER, Auth } from '../lib/auth.js'
import { encodeBatch } from '../lib/frames.js'
import { Peer } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION, keyPath } from '../lib/protocol.js'
import { type Outcome, Prng, type RawRequest, exchange, requestBytes } from './helpers/fuzz.js'
import { freePort } from './helpers/net.js'

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed11)
const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret'
const SKEW_MS = 5000
const BASE = '/_peercache/'
const GROUP = 'g'
/** A member of the ring that never listens: a spoofed leave must not mark it down. */
const OTHER = 'http://127.0.0.1:9'
/** Server timeouts of this test's peer: short, so slow clients are cut within the suite's time. */
const REQUEST_TIMEOUT_MS = 2000

const port = await freePort()
const self = `http://127.0.0.1:${port}`
let loads = 0
const peer = new Peer({ self, peers: [self, OTHER], auth: { secret: SECRET, maxSkewMs: SKEW_MS } })
const group = peer.group(GROUP, {
  maxBytes: 1 << 20,
  load: (key) => {
    loads++
    return Buffer.from(`loaded ${key}`)
  },
})
t.teardown(() => peer.close())
await peer.listen({ port, requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: REQUEST_TIMEOUT_MS })

const signer = new Auth({ secret: SECRET })
const stranger = new Auth({ secret: 'not-the-secret-not-the-secret!!' })
/** Signs with the right secret on a clock `offset` ms off. */
const skew = { offset: 0 }
const skewed = new Auth({ secret: SECRET }, () => Date.now() + skew.offset)

/** A well-formed request of the protocol, signed by `by` (null: unsigned). */
function signed(method: string, path: string, body?: Buffer, by: Auth | null = signer, extra: [string, string][] = []): RawRequest {
  const headers: [string, string][] = [[HEADER.protocol, String(PROTOCOL_VERSION)], [HEADER.from, OTHER], ...extra]
  if (by) for (const [h, v] of Object.entries(by.sign(method, path, OTHER, body))) headers.push([h, v])
  return { method, path, headers, body }
}

/** The requests of every operation a peer serves, well-formed: what the unsigned cases start from. */
function operations(r: Prng): [string, string, Buffer | undefined][] {
  const key = `user:${r.int(0, 99)}`
  return [
    ['GET', keyPath(BASE, GROUP, key), undefined],
    ['HEAD', keyPath(BASE, GROUP, key), undefined],
    ['PUT', keyPath(BASE, GROUP, key), Buffer.from('{"admin":true}')],
    ['DELETE', keyPath(BASE, GROUP, key), undefined],
    ['POST', `${BASE}leave`, undefined],
    ['POST', `${BASE}batch`, encodeBatch([{ group: GROUP, key }])],
  ]
}

interface Case {
  category: string
  bytes: Buffer
  /** Statuses that are right for it; closing the socket is always allowed. */
  expect: readonly number[]
  slow?: { chunkBytes?: number; pauseMs?: number; stallAfter?: number }
}

const ANY_4XX = Array.from({ length: 100 }, (_, i) => 400 + i)
const BAD_VERSIONS = [
  '1.7976931348623157e308',
  'NaN',
  '-1',
  '1.5',
  '9007199254740993',
  'Infinity',
  '0x10',
  '',
  'abc',
  '1e3',
  '+1',
  '1 2',
  // An hour ahead of the receiver's clock: a version from a clock that cannot be right.
  String((Date.now() + 3_600_000) * 1000),
]
const BAD_PERCENT = ['%', '%G1', '%C3%28', '%ED%A0%80', '%FF', '%E2%82', 'a%', '%%', '%u0041', '%C0%AF']
const BAD_METHODS = ['PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'FOO', 'M-SEARCH', 'LINK']

/** The generators, one per category: [category, how many cases, make one]. */
const CATEGORIES: [string, number, (r: Prng) => Omit<Case, 'category'>][] = [
  ['random bytes', 2900, (r) => ({ bytes: r.bytes(r.int(1, 2048)), expect: ANY_4XX })],
  [
    'truncated frames',
    1000,
    (r) => {
      const items = Array.from({ length: r.int(1, 20) }, (_, i) => ({ group: GROUP, key: `k${i}`.repeat(r.int(1, 5)) }))
      const body = encodeBatch(items)
      // Cut anywhere but between two items (a shorter batch is a valid one).
      const ends = new Set(items.map((_, i) => encodeBatch(items.slice(0, i + 1)).length))
      let cut = r.int(1, body.length - 1)
      while (ends.has(cut)) cut = r.int(1, body.length - 1)
      return { bytes: requestBytes(signed('POST', `${BASE}batch`, body.subarray(0, cut))), expect: [400] }
    },
  ],
  [
    'huge lengths',
    1000,
    (r) => {
      if (r.next() < 0.5) {
        // A frame whose key (or group) length runs past the body.
        const body = encodeBatch([{ group: GROUP, key: 'k' }])
        if (r.next() < 0.5) body.writeUInt32LE(r.int(2, 0xffffffff), 2 + GROUP.length)
        else body.writeUInt16LE(r.int(2, 0x7fff), 0)
        return { bytes: requestBytes(signed('POST', `${BASE}batch`, body)), expect: [400] }
      }
      const length = r.pick(['99999999999999999999', '9007199254740993', '4294967296', '1e9', '-1', '0x10', '1 2', `${r.int(9, 1e9)}`])
      const req = signed(r.pick(['PUT', 'POST']), r.next() < 0.5 ? `${BASE}batch` : keyPath(BASE, GROUP, 'k'), Buffer.from('x'))
      return { bytes: requestBytes({ ...req, contentLength: length }), expect: ANY_4XX }
    },
  ],
  [
    '100,000-key batches',
    20,
    (r) => {
      // One item repeated (Buffer.alloc fills with it): quick to make, so its signature is fresh when sent.
      const item = encodeBatch([{ group: GROUP, key: `k${r.int(0, 999)}`, peek: r.next() < 0.5 }])
      const body = Buffer.alloc(item.length * 100_000, item)
      return { bytes: requestBytes(signed('POST', `${BASE}batch`, body)), expect: [400, 413] }
    },
  ],
  [
    'bad methods',
    800,
    (r) => {
      const method = r.next() < 0.8 ? r.pick(BAD_METHODS) : r.bytes(r.int(1, 12)).toString('base64url')
      return {
        bytes: requestBytes(signed(method, r.next() < 0.5 ? keyPath(BASE, GROUP, 'k') : `${BASE}${r.pick(['batch', 'leave', 'health'])}`)),
        expect: [400, 405],
      }
    },
  ],
  [
    'bad percent-encodings',
    800,
    (r) => ({
      bytes: requestBytes(signed(r.pick(['GET', 'PUT', 'DELETE']), `${BASE}${GROUP}/k${r.pick(BAD_PERCENT)}${r.int(0, 9)}`)),
      expect: [400],
    }),
  ],
  [
    'overlong paths and headers',
    600,
    (r) => {
      const which = r.int(0, 3)
      if (which === 0)
        return { bytes: requestBytes(signed('GET', `${BASE}${GROUP}/${'k'.repeat(r.int(17_000, 70_000))}`)), expect: [400, 414, 431] }
      // A key just past the group's 4096-byte limit fits in the URL: refused as a bad key, never a 500.
      if (which === 1)
        return {
          bytes: requestBytes(
            signed(r.pick(['GET', 'PUT', 'DELETE']), keyPath(BASE, GROUP, 'k'.repeat(r.int(4097, 5000))), Buffer.from('v')),
          ),
          expect: [400],
        }
      if (which === 2)
        return {
          bytes: requestBytes(signed('GET', keyPath(BASE, GROUP, 'k'), undefined, signer, [['x-pad', 'p'.repeat(r.int(17_000, 100_000))]])),
          expect: [431],
        }
      const many = Array.from({ length: r.int(2100, 4000) }, (_, i): [string, string] => [`x-h${i}`, 'v'])
      // Node keeps the first 2,000 headers: the signature after them is dropped, and the request refused as unsigned.
      return { bytes: requestBytes(signed('GET', keyPath(BASE, GROUP, 'k'), undefined, signer, many)), expect: [400, 401, 431] }
    },
  ],
  [
    'bad signatures',
    1200,
    (r) => {
      const [method, path, body] = r.pick(operations(r))
      const kind = r.int(0, 3)
      if (kind === 0) return { bytes: requestBytes(signed(method, path, body, null)), expect: [401] }
      if (kind === 1) return { bytes: requestBytes(signed(method, path, body, stranger)), expect: [401] }
      const req = signed(method, path, body)
      if (kind === 2) {
        // A signature made for another request: another path, or another body.
        const forged = signed(method, keyPath(BASE, GROUP, 'other'), body)
        const h = forged.headers!.find(([n]) => n === AUTH_HEADER.signature)!
        req.headers = req.headers!.map(([n, v]) => [n, n === AUTH_HEADER.signature ? h[1] : v])
        return { bytes: requestBytes(req), expect: [401] }
      }
      const mangled = req.headers!.map(([n, v]): [string, string] => [n, n === AUTH_HEADER.signature ? mangle(r, v) : v])
      // Bytes that are not a header value at all are refused by the HTTP parser (400).
      return { bytes: requestBytes({ ...req, headers: mangled }), expect: [400, 401] }
    },
  ],
  [
    'bodies that are not the signed one',
    300,
    (r) => {
      const [method, path] = r.pick([
        ['PUT', keyPath(BASE, GROUP, 'k')],
        ['POST', `${BASE}batch`],
      ])
      const req = signed(method!, path!, encodeBatch([{ group: GROUP, key: 'k' }]))
      const body = Buffer.from(req.body!)
      body[r.int(0, body.length - 1)]! ^= 1 << r.int(0, 7)
      return { bytes: requestBytes({ ...req, body }), expect: [401] }
    },
  ],
  [
    'stale timestamps',
    600,
    (r) => {
      // At least a second past the skew: the case must still be stale when it arrives.
      skew.offset = (r.next() < 0.5 ? -1 : 1) * r.int(SKEW_MS + 1000, 10 ** r.int(4, 12))
      const [method, path, body] = r.pick(operations(r))
      return { bytes: requestBytes(signed(method, path, body, skewed)), expect: [401] }
    },
  ],
  [
    'bad version headers',
    800,
    (r) => {
      const bad = r.pick(BAD_VERSIONS)
      if (r.next() < 0.2) return { bytes: withProtocol(r, bad), expect: [400] }
      const method = r.pick(['PUT', 'DELETE'])
      const extra: [string, string][] = [[HEADER.version, bad]]
      if (method === 'PUT' && r.next() < 0.7) extra.push([HEADER.replica, '1'])
      return {
        bytes: requestBytes(signed(method, keyPath(BASE, GROUP, 'k'), method === 'PUT' ? Buffer.from('v') : undefined, signer, extra)),
        expect: [400],
      }
    },
  ],
  [
    'slow bodies',
    8,
    (r) => {
      const req = signed('PUT', keyPath(BASE, GROUP, 'k'), Buffer.alloc(r.int(1000, 100_000), 'v'))
      const bytes = requestBytes(req)
      // The head and a few bytes of the body, then nothing.
      return { bytes, expect: [408], slow: { stallAfter: bytes.length - req.body!.length + r.int(0, 100) } }
    },
  ],
]

/** A signed GET whose protocol header is `bad` instead of the right version. */
function withProtocol(r: Prng, bad: string): Buffer {
  const req = signed('GET', keyPath(BASE, GROUP, `k${r.int(0, 9)}`))
  req.headers = req.headers!.map(([n, v]) => [n, n === HEADER.protocol ? bad : v])
  return requestBytes(req)
}

/** A signature header changed in one of the ways a forger would try. */
function mangle(r: Prng, v: string): string {
  const [time, nonce, sig] = v.split('.') as [string, string, string]
  switch (r.int(0, 5)) {
    case 0:
      return `${time}.${nonce}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`
    case 1:
      return `${Number(time) + 1}.${nonce}.${sig}`
    case 2:
      return `${time}.${nonce}.${'A'.repeat(43)}`
    case 3:
      return ''
    case 4:
      return r
        .bytes(r.int(1, 200))
        .toString('latin1')
        .replace(/[\r\n]/g, '')
    default:
      return `${time}.${nonce}`
  }
}

/**
 * Every case of the suite, from SEED: the same seed, the same requests. Each is made just before it
 * is sent (a signature made earlier would be stale by the time a long run reaches it).
 */
function cases(): { category: string; seed: number; make: (r: Prng) => Omit<Case, 'category'> }[] {
  // FUZZ_ONLY=<category> runs one category (to reproduce a failure quickly).
  const only = process.env.FUZZ_ONLY
  return CATEGORIES.filter(([category]) => only === undefined || category === only).flatMap(([category, count, make], c) =>
    Array.from({ length: count }, (_, i) => ({ category, seed: SEED + c * 1_000_003 + i, make })),
  )
}

/** The first bytes of a case, readable, for the report. */
function show(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 400).toString('latin1')) + (bytes.length > 400 ? ` … (${bytes.length} bytes)` : '')
}

function heapUsed(): number {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

t.test(`${CATEGORIES.reduce((n, c) => n + c[1], 0)} malformed requests, seed ${SEED}`, async (t) => {
  const all = cases()
  const baseline = heapUsed()
  const outcomes = new Map<string, Map<Outcome['status'], number>>()
  const failures: string[] = []
  const run = async ({ category, seed, make }: (typeof all)[0]) => {
    const c = make(new Prng(seed))
    const limitMs = c.slow ? REQUEST_TIMEOUT_MS + 10_000 : 10_000
    const o = await exchange(port, c.bytes, { limitMs, ...c.slow })
    const counts = outcomes.get(category) ?? new Map<Outcome['status'], number>()
    outcomes.set(category, counts.set(o.status, (counts.get(o.status) ?? 0) + 1))
    if (o.status === 'closed' || c.expect.includes(o.status as number)) return
    if (failures.filter((f) => f.startsWith(category)).length < 3)
      failures.push(
        `${category} (case seed ${seed}): got ${o.status}, expected ${c.expect.length > 10 ? '4xx' : c.expect.join('/')} or a close\n  sent ${show(c.bytes)}\n  answer ${JSON.stringify(o.head)}`,
      )
  }
  // Slow clients run alongside the rest (each holds a connection until the server cuts it).
  const slow = Promise.all(all.filter((c) => c.category === 'slow bodies').map(run))
  const quick = all.filter((c) => c.category !== 'slow bodies')
  let next = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < quick.length) await run(quick[next++]!)
    }),
  )
  await slow
  for (const f of failures) t.fail(`seed ${SEED}, ${f}`)
  for (const [category, counts] of outcomes) {
    const expected = CATEGORIES.find((c) => c[0] === category)!
    t.comment(`${category}: ${[...counts].map(([s, n]) => `${s} ×${n}`).join(', ')}`)
    const answered = [...counts].filter(([s]) => s !== 'closed').reduce((n, [, k]) => n + k, 0)
    t.ok(answered > 0 || expected[1] < 10, `${category}: the server answered some with a status, not only by closing`)
  }
  t.equal(loads, 0, 'no loader ran')
  t.equal(group.stats().main.items + group.stats().hot.items, 0, 'nothing was stored')
  t.notOk(
    peer.health().some((h) => h.peer === OTHER && h.state === 'down'),
    'no spoofed leave marked a peer down',
  )
  const grown = heapUsed() - baseline
  t.ok(grown < 16 << 20, `the heap came back near its baseline (+${(grown / 2 ** 20).toFixed(1)} MiB)`)
  // Still up, and still serving a real peer.
  const health = await exchange(port, requestBytes(signed('GET', `${BASE}health`)), { limitMs: 10_000 })
  t.equal(health.status, 200, 'a signed health probe is answered')
  const get = await exchange(port, requestBytes(signed('GET', keyPath(BASE, GROUP, 'after'))), { limitMs: 10_000, halfClose: false })
  t.equal(get.status, 200, `a signed get is served (${get.head.slice(0, 200)})`)
  t.equal(loads, 1, 'by one load')
})

t.test('a replayed request is refused, whatever it asks', async (t) => {
  for (let i = 0; i < 200; i++) {
    const bytes = requestBytes(signed('GET', `${BASE}health`))
    const first = await exchange(port, bytes, { limitMs: 10_000 })
    const again = await exchange(port, bytes, { limitMs: 10_000 })
    if (first.status !== 200 || again.status !== 401) {
      t.fail(`seed ${SEED}, replay ${i}: first ${first.status}, replay ${again.status}\n  sent ${show(bytes)}`)
      return
    }
  }
  t.pass('200 replays of a health probe were refused (401) after the original was served')
})
