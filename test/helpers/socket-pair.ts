// Two ends of one real TCP connection on loopback, for code that writes to a socket: the test
// reads (or does not read, to fill the kernel's buffers) at the other end.
import net from 'node:net'
import type { Teardown } from './net.js'

/** A connected pair: `writer` (the client's socket) and `reader` (the server's, paused until the test reads). Destroyed at teardown. */
export async function socketPair(t: Teardown): Promise<{ writer: net.Socket; reader: net.Socket }> {
  const server = net.createServer({ pauseOnConnect: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
  const writer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => writer.once('connect', resolve).once('error', reject))
  const reader = await accepted
  t.teardown(() => {
    writer.destroy()
    reader.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { writer, reader }
}

/** Everything `reader` receives until the other end ends the connection. */
export function readToEnd(reader: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  return new Promise((resolve, reject) => {
    reader.on('data', (c: Buffer) => chunks.push(c))
    reader.once('end', () => resolve(Buffer.concat(chunks)))
    reader.once('error', reject)
    reader.resume()
  })
}
