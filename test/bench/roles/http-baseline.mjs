// Role of the transport floor in the remote-hit scenario: one plain HTTP/1.1 GET per get (undici
// Pool, 8 keep-alive connections, as peercache's client) against a node:http server answering from
// a Map. What any one-request-per-get protocol between two Node processes costs on this machine.
import http from 'node:http'
import { Pool } from 'undici'
import { closedLoop } from '../load-loop.mjs'

let server
let pool

/** Server side: `keysBySize` is [[valueBytes, keys]]; holds a value of that size for each key; resolves with its URL. */
export async function serve({ keysBySize }) {
  const values = new Map()
  for (const [valueBytes, keys] of keysBySize)
    for (const key of keys) values.set(key, Buffer.alloc(valueBytes, key.charCodeAt(key.length - 1)))
  server = http.createServer((req, res) => {
    const value = values.get(decodeURIComponent(req.url.slice(1)))
    if (value === undefined) {
      res.statusCode = 404
      return res.end()
    }
    res.setHeader('content-length', value.length)
    res.end(value)
  })
  server.keepAliveTimeout = 10_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${server.address().port}`
}

/** Client side. */
export function connect({ url, connections = 8 }) {
  pool = new Pool(url, { connections })
}

/** A closed-loop run of GETs (see load-loop.mjs); checks each value's size. */
export function load({ valueBytes, ...loop }) {
  return closedLoop({
    ...loop,
    op: async (key) => {
      const res = await pool.request({ path: `/${encodeURIComponent(key)}`, method: 'GET' })
      const value = Buffer.from(await res.body.arrayBuffer())
      if (res.statusCode !== 200 || value.length !== valueBytes)
        throw new Error(`${key}: HTTP ${res.statusCode}, ${value.length} bytes, expected ${valueBytes}`)
    },
  })
}

export async function close() {
  await pool?.close()
  if (server) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}
