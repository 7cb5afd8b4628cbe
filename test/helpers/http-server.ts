// A real node:http server on loopback whose answers a test writes itself: for the wire helpers
// (refusals, answer errors, the batch client) seen from the other end of a real connection.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Teardown } from './net.js'

/** Starts `handler` on 127.0.0.1 (a port the kernel picks); closed, connections and all, at teardown. */
export async function httpServer(t: Teardown, handler: http.RequestListener): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}
