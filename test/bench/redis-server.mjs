// The Redis the remote-hit scenario compares against: Debian's redis-server, started by the bench
// on 127.0.0.1 with a free port and no persistence, and stopped by it.
import { spawn, spawnSync } from 'node:child_process'
import net from 'node:net'
import { track } from './procs.mjs'

export const INSTALL_COMMAND = 'apt-get install -y redis-server'

/** redis-server's version line, or undefined when it is not installed. */
export function redisVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/**
 * Makes sure redis-server is there: with `install`, runs the install command when it is missing.
 * Resolves with { version } or { missing: message saying how to install it }.
 */
export function ensureRedis({ install }) {
  let version = redisVersion()
  if (version === undefined && install) {
    console.error(`redis-server is missing: running \`${INSTALL_COMMAND}\``)
    spawnSync('apt-get', ['install', '-y', 'redis-server'], { stdio: ['ignore', 2, 2] })
    version = redisVersion()
  }
  if (version !== undefined) return { version }
  return {
    missing: `redis-server is not installed: the ioredis rows are skipped. Install it with \`${INSTALL_COMMAND}\` (or run \`npm run bench -- --install\`).`,
  }
}

/** Starts redis-server on a free port of 127.0.0.1; resolves with { port, stop }. */
export async function startRedis() {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  track(child)
  let output = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000)
    const onData = (chunk) => {
      output += chunk
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    }
    const fail = (err) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => fail(new Error(`redis-server exited with code ${code}:\n${output}`)))
  })
  child.stdout.resume()
  child.stderr.resume()
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  return { port, stop }
}

/** A port that was free a moment ago (redis-server cannot be told to pick one itself). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}
