// Bodies read within limits: the declared length is refused before a byte of body is read, a body
// without one is cut at the limit, a batch is refused at its 1,025th item however long it was meant
// to be, and a signed body must be the one signed. Proved over raw TCP: the client sends only part
// of the body and then stalls, and the answer still comes.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { digestOf } from '../lib/auth.js'
import { BodyRejected, type BodyLimits, ItemCounter, readBody } from '../lib/body.js'
import { decodeBatch, encodeBatch } from '../lib/frames.js'
import { Prng, exchange, requestBytes } from './helpers/fuzz.js'
import type { TapTest } from './helpers/tap.js'

/** A server that reads each body with `limits` and answers 200 with its length, or the rejection's status. */
async function bodyServer(t: TapTest, limits: (req: http.IncomingMessage) => BodyLimits): Promise<{ port: number; outcomes: string[] }> {
  const outcomes: string[] = []
  const server = http.createServer((req, res) => {
    readBody(req, limits(req)).then(
      (body) => {
        outcomes.push(`ok ${body.length}`)
        res.end(String(body.length))
      },
      (err: BodyRejected) => {
        outcomes.push(`${err.status} ${err.message}`)
        if (res.destroyed) return
        res.writeHead(err.status, { connection: 'close' }).end(err.message)
      },
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
  return { port: (server.address() as AddressInfo).port, outcomes }
}

const LIMIT = 64 * 1024

t.test('a body within the limits comes back whole, in one piece or many', async (t) => {
  const { port } = await bodyServer(t, () => ({ maxBytes: LIMIT }))
  const body = Buffer.alloc(LIMIT, 'x')
  const whole = await exchange(port, requestBytes({ method: 'PUT', path: '/', body }), { limitMs: 10_000 })
  t.equal(whole.status, 200)
  t.match(whole.head, /\r\n\r\n65536$/)
  const trickled = await exchange(port, requestBytes({ method: 'PUT', path: '/', body: body.subarray(0, 3000) }), {
    chunkBytes: 97,
    limitMs: 10_000,
  })
  t.match(trickled.head, /\r\n\r\n3000$/)
})

t.test('a declared length over the limit is refused before any of the body is sent', async (t) => {
  const { port, outcomes } = await bodyServer(t, () => ({ maxBytes: LIMIT }))
  const head = requestBytes({ method: 'PUT', path: '/', contentLength: String(LIMIT + 1), body: Buffer.alloc(0) })
  // Only the head is sent: had the server waited for the body, this would hang.
  const o = await exchange(port, head, { stallAfter: head.length, limitMs: 10_000 })
  t.equal(o.status, 413)
  t.same(outcomes, [`413 the body is larger than ${LIMIT} bytes`])
})

t.test('a chunked body is cut once it passes the limit, without waiting for the rest', async (t) => {
  const { port } = await bodyServer(t, () => ({ maxBytes: LIMIT }))
  const chunk = Buffer.alloc(LIMIT + 1, 'x')
  const bytes = Buffer.concat([
    Buffer.from('PUT / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n'),
    Buffer.from(`${chunk.length.toString(16)}\r\n`),
    chunk,
    Buffer.from('\r\n'),
  ])
  // The chunk that breaks the limit is sent, then nothing: no terminating chunk ever comes.
  const o = await exchange(port, bytes, { stallAfter: bytes.length, limitMs: 10_000 })
  t.equal(o.status, 413)
})

t.test('a batch is refused at its 1,025th item, not after decoding 1.4 million of them', async (t) => {
  const { port, outcomes } = await bodyServer(t, () => ({ maxBytes: 8 << 20, maxItems: 1024 }))
  // The attack of issue 11: an 8 MiB body of empty items. The client sends 1,025 items and stalls.
  const items = encodeBatch(Array.from({ length: 1025 }, () => ({ group: '', key: '' })))
  const bytes = requestBytes({ method: 'POST', path: '/', contentLength: String(8 << 20), body: items })
  const o = await exchange(port, bytes, { stallAfter: bytes.length, limitMs: 10_000 })
  t.equal(o.status, 400)
  t.same(outcomes, ['400 a batch holds at most 1024 keys'])
  const ok = await exchange(port, requestBytes({ method: 'POST', path: '/', body: items.subarray(0, items.length - 6) }), {
    limitMs: 10_000,
  })
  t.equal(ok.status, 200, '1,024 items pass')
})

t.test('ItemCounter counts the items of any batch, however its chunks are cut', async (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = new Prng(seed)
    const items = Array.from({ length: r.int(0, 40) }, () => ({
      group: 'g'.repeat(r.int(0, 64)),
      key: r.bytes(r.int(0, 300)).toString('latin1'),
      peek: r.next() < 0.5,
    }))
    const body = encodeBatch(items)
    const counter = new ItemCounter()
    for (let o = 0; o < body.length; ) {
      const n = r.int(1, 9)
      counter.push(body.subarray(o, o + n))
      o += n
    }
    if (counter.count !== decodeBatch(body).length) {
      t.fail(`seed ${seed}: counted ${counter.count} of ${items.length}`)
      return
    }
  }
  t.pass('300 random batches cut in 1-9 byte chunks were counted exactly')
})

t.test('a signed body must be the one signed', async (t) => {
  const signed = Buffer.from('{"admin":false}')
  const { port, outcomes } = await bodyServer(t, () => ({ maxBytes: LIMIT, digest: digestOf(signed) }))
  t.equal((await exchange(port, requestBytes({ method: 'PUT', path: '/', body: signed }), { limitMs: 10_000 })).status, 200)
  const forged = Buffer.from('{"admin":true!}')
  t.equal((await exchange(port, requestBytes({ method: 'PUT', path: '/', body: forged }), { limitMs: 10_000 })).status, 401)
  t.same(outcomes, [`ok ${signed.length}`, '401 the body is not the one signed'])
})

t.test('a sender that hangs up mid-body settles the read (a rejection, nothing kept)', async (t) => {
  const { port, outcomes } = await bodyServer(t, () => ({ maxBytes: LIMIT }))
  const bytes = requestBytes({ method: 'PUT', path: '/', contentLength: '1000', body: Buffer.alloc(10, 'x') })
  const o = await exchange(port, bytes, { limitMs: 10_000 })
  t.ok(o.status === 'closed' || o.status === 400, `closed or a 400 (${o.status})`)
  for (let i = 0; i < 100 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.same(outcomes, ['400 the body was cut short'])
})

t.test('BodyRejected is a PeercacheError with a code', async (t) => {
  const e = new BodyRejected(413, 'x')
  t.equal(e.code, 'PEERCACHE_ERR_BODY')
  t.equal(e.status, 413)
})
