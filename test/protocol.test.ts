// Keys on the wire: every byte outside the unreserved set is escaped (dots too, so `.` and `..`
// never become dot segments), the path reaches a real server exactly as sent, and the batch frames
// carry any UTF-8 key as its own bytes.
import t from 'tap'
import { PEER_DEFAULTS } from '../lib/defaults.js'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { decodeBatch, encodeBatch, encodeFrame, FrameParser } from '../lib/frames.js'
import { PROTOCOL_VERSION, encodeKey, keyPath } from '../lib/protocol.js'
import { TRICKY_KEYS } from './helpers/keys.js'

t.test('encodeKey escapes everything outside [A-Za-z0-9_~-] and decodes back exactly', async (t) => {
  for (const key of TRICKY_KEYS) {
    const encoded = encodeKey(key)
    t.match(encoded, /^(?:[A-Za-z0-9_~-]|%[0-9A-F]{2})*$/, `${JSON.stringify(key)} → ${encoded}`)
    t.equal(decodeURIComponent(encoded), key)
  }
  t.equal(encodeKey('.'), '%2E')
  t.equal(encodeKey('..'), '%2E%2E')
  t.equal(encodeKey('a.b'), 'a%2Eb')
  t.equal(encodeKey("!'()*"), '%21%27%28%29%2A')
  t.equal(keyPath('/_peercache/', 'users', 'a/b'), '/_peercache/users/a%2Fb')
})

t.test('the protocol has a positive integer version and the documented base path', async (t) => {
  t.ok(Number.isInteger(PROTOCOL_VERSION) && PROTOCOL_VERSION > 0)
  t.equal(PEER_DEFAULTS.basePath, '/_peercache/')
})

t.test('a key path reaches a real server unchanged through undici', async (t) => {
  const seen: string[] = []
  const server = http.createServer((req, res) => {
    seen.push(req.url!)
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(async () => {
    await pool.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  for (const key of TRICKY_KEYS) {
    const path = keyPath(PEER_DEFAULTS.basePath, 'g', key)
    const res = await pool.request({ path, method: 'GET' })
    await res.body.dump()
    const url = seen.at(-1)!
    t.equal(url, path, `${JSON.stringify(key)}: the server saw the path as sent`)
    t.equal(decodeURIComponent(url.slice(url.lastIndexOf('/') + 1)), key, 'and its last segment decodes to the key')
  }
})

t.test('batch frames carry any UTF-8 key and group, and values split across any chunks', async (t) => {
  const items = TRICKY_KEYS.map((key, i) => ({ group: i % 2 ? 'g' : 'other.group-1', key }))
  t.same(
    decodeBatch(encodeBatch(items)),
    items.map((it) => ({ ...it, peek: false })),
  )
  const peeks = items.map((it, i) => ({ ...it, peek: i % 3 === 0 }))
  t.same(decodeBatch(encodeBatch(peeks)), peeks, 'the peek flag survives the round trip')
  const body = encodeBatch(items)
  t.throws(() => decodeBatch(body.subarray(0, body.length - 1)), RangeError, 'a truncated batch')

  const frames = TRICKY_KEYS.map((key, i) =>
    Buffer.concat(encodeFrame(i, i % 3 ? 'ok' : 'load', Buffer.from(`value of ${key}`), 1000 + i, 42 + i)),
  )
  const stream = Buffer.concat(frames)
  for (const chunkSize of [1, 7, 25, stream.length]) {
    const parser = new FrameParser()
    const got = []
    for (let o = 0; o < stream.length; o += chunkSize) got.push(...parser.push(stream.subarray(o, o + chunkSize)))
    t.same(
      got.map((f) => [f.index, f.status, f.payload.toString(), f.expiresAt, f.version]),
      TRICKY_KEYS.map((key, i) => [i, i % 3 ? 'ok' : 'load', `value of ${key}`, 1000 + i, 42 + i]),
      `chunks of ${chunkSize}: every frame intact`,
    )
  }
})
