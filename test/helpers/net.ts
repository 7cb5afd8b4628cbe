// Loopback plumbing for tests: free ports, and a peer that accepts connections but never answers.
import net from 'node:net'

/** Something that runs clean-up at the end of a test (a tap Test). */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A port that was free a moment ago on `host` (another loopback address such as 127.0.0.2 works too):
 * the kernel picks it (port 0), we let it go and the caller binds it next. Peers must know every URL
 * before they start, hence this small race.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * A TCP server on loopback that accepts every connection, reads what it is sent and never writes a
 * byte: a hung peer (a stopped process, a wedged event loop) as a client sees it.
 * Returns its URL; the server and its sockets are destroyed at teardown.
 */
export async function hungPeer(t: Teardown): Promise<{ url: string; connections: () => number; requests: () => string[] }> {
  const sockets = new Set<net.Socket>()
  const requests: string[] = []
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    // Read and drop, so the client's writes never block; note each request line (`PUT /_peercache/…`).
    socket.on('data', (chunk: Buffer) => {
      for (const m of chunk.toString('latin1').matchAll(/(?:^|\r\n)([A-Z]+ \/\S* HTTP\/1\.1)\r\n/g)) requests.push(m[1]!)
    })
    socket.on('error', () => {})
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as net.AddressInfo
  return { url: `http://127.0.0.1:${port}`, connections: () => accepted, requests: () => [...requests] }
}
