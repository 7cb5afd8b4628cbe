// A Redis for tests that compare peercache with what users run today: Debian's redis-server (installed
// by the test when missing, else a one-line skip), on a free port of 127.0.0.1, no persistence,
// killed at teardown.
import { spawn } from 'node:child_process'
import { ensureDebianCommand } from './debian.js'
import { freePort, type Teardown } from './net.js'

/** Longest wait for redis-server to say it is ready, in ms (a loaded machine starts it slowly). */
const START_MS = 30_000

/** Starts redis-server; resolves with its URL, or with the reason it cannot be had. */
export async function startRedis(t: Teardown): Promise<{ url: string } | { skip: string }> {
  const found = ensureDebianCommand('redis-server', 'redis-server')
  if ('skip' in found) return found
  const port = await freePort()
  const child = spawn(found.path, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => void child.kill('SIGKILL'))
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${START_MS} ms:\n${output}`)), START_MS)
    const onData = (chunk: Buffer) => {
      output += chunk
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with code ${code}:\n${output}`))
    })
  })
  child.stdout.resume()
  child.stderr.resume()
  return { url: `redis://127.0.0.1:${port}` }
}
