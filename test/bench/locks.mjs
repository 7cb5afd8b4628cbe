// The lock figures of issue 14: `npm run build && node test/bench/locks.mjs`.
// Three peercache processes on 127.0.0.1 (test/fixtures/lock-member.mjs). Contention: every process
// runs WORKERS callers taking one lock in turn (take, one turn of the event loop, release) for
// CONTEND_MS or CONTEND_GRANTS grants each: grants per second over the three. Failover (ROUNDS
// fresh clusters): a lease is held and a caller waits when the lock's owner is killed (SIGKILL);
// the time from the kill to the waiter's grant is measured. All processes share this machine's
// clock, so times from different processes compare.
// Prints Markdown tables, then one JSON line. Bounded: every loop by count and time, the whole run
// by a timer.
import { fork } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { bounded, children } from './standalone.mjs'
import { Ring } from '../../dist/ring.js'
import { median } from './stats.mjs'
import { formatTable } from './table.mjs'

const MEMBER = fileURLToPath(new URL('../fixtures/lock-member.mjs', import.meta.url))
/** The run's bounds: callers per process, how long and how many grants under contention, failover rounds, the longest wait for a grant after a kill (ms). */
const { WORKERS, CONTEND_MS, CONTEND_GRANTS, ROUNDS, AFTER_KILL_MS } = {
  WORKERS: 4,
  CONTEND_MS: 8000,
  CONTEND_GRANTS: 5000,
  ROUNDS: 4,
  AFTER_KILL_MS: 20_000,
}
const PEER = { peerTimeoutMs: 1000 }

const log = bounded('locks', 240_000)

/** A lock member process: `call(cmd, args)` over IPC (ipc.mjs's protocol), `kill()`. */
async function startMember(name) {
  const child = fork(MEMBER, [], { env: { ...process.env, MEMBER_NAME: name }, stdio: ['ignore', 2, 2, 'ipc'] })
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', () => resolve(children.delete(child))))
  const calls = new Map()
  let next = 0
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) while starting`)))
    child.once('message', (msg) => (msg?.type === 'reserved' ? resolve(msg.port) : reject(new Error(`${name}: ${JSON.stringify(msg)}`))))
  })
  child.on('message', ({ id, ok, result, error }) => {
    const call = calls.get(id)
    calls.delete(id)
    if (ok) call?.resolve(result)
    else call?.reject(new Error(`${name}: ${error?.message}`))
  })
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    call: (cmd, args = {}) =>
      new Promise((resolve, reject) => {
        const id = next++
        calls.set(id, { resolve, reject })
        child.send({ id, cmd, args })
      }),
    kill: () => (child.kill('SIGKILL'), exited),
  }
}

async function startThree() {
  const members = await Promise.all(['a', 'b', 'c'].map(startMember))
  const peers = members.map((m) => m.url)
  await Promise.all(members.map((m) => m.call('init', { peers, peer: PEER })))
  return members
}

async function contention() {
  const members = await startThree()
  const reports = await Promise.all(
    members.map((m) => m.call('contend', { name: 'bench', workers: WORKERS, count: CONTEND_GRANTS, durationMs: CONTEND_MS })),
  )
  await Promise.all(members.map((m) => m.kill()))
  const grants = reports.reduce((sum, r) => sum + r.grants, 0)
  const seconds = (Math.max(...reports.map((r) => r.endedAt)) - Math.min(...reports.map((r) => r.startedAt))) / 1000
  const errors = reports.flatMap((r) => r.errors)
  return {
    grants,
    seconds,
    perSecond: grants / seconds,
    errors: errors.length,
    notReleased: reports.reduce((n, r) => n + r.notReleased.length, 0),
  }
}

/**
 * One caller holds the lock, another waits for it at the owner; the owner is killed, the holder
 * releases at once (its release finds the next owner), and the waiter's grant is timed from the kill:
 * failure detection, the wait asked again at the next owner, the release, the grant.
 */
async function failover(round) {
  const members = await startThree()
  const name = `failover-${round}`
  const [owner, next, third] = new Ring(members.map((m) => m.url)).owners(name, 3).map((url) => members.find((m) => m.url === url))
  const [holder, waiter] = round % 2 === 1 ? [third, next] : [next, third]
  const held = await holder.call('acquire', { name, ttlMs: 30_000 })
  const waiting = await waiter.call('acquire', { name, ttlMs: 30_000, wait: false })
  while ((await owner.call('state', { name })).waiting === 0) await sleep(10)
  const killedAt = Date.now()
  await owner.kill()
  const released = await holder.call('release', { handle: held.handle })
  const releasedAt = Date.now()
  let granted = await waiter.call('pending', { handle: waiting.handle })
  for (const end = Date.now() + AFTER_KILL_MS; !granted.granted && Date.now() < end; await sleep(5))
    granted = await waiter.call('pending', { handle: waiting.handle })
  await Promise.all([next, third].map((m) => m.kill()))
  return {
    round,
    holder: holder === next ? 'next owner' : 'third',
    released: released.released,
    releaseMs: releasedAt - killedAt,
    nextGrantMs: granted.granted ? granted.grantedAt - killedAt : undefined,
    tokenIncreased: granted.granted && granted.token > held.token,
  }
}

log('contention: 3 processes')
const contended = await contention()
const rounds = []
for (let round = 1; round <= ROUNDS; round++) {
  log(`failover round ${round}`)
  rounds.push(await failover(round))
}

console.log(
  formatTable(
    `Lock grants under contention (3 processes × ${WORKERS} callers, one lock)`,
    ['grants', 'seconds', 'grants/s', 'errors', 'not released'],
    [[contended.grants, contended.seconds, contended.perSecond, contended.errors, contended.notReleased]],
  ),
)
console.log(
  formatTable(
    'SIGKILL of the lock’s owner while a lease is held and a caller waits',
    ['round', 'holder is', 'kill → release returns (ms)', 'kill → next grant (ms)', 'token larger'],
    rounds.map((r) => [r.round, r.holder, r.releaseMs, r.nextGrantMs, r.tokenIncreased ? 'yes' : 'NO']),
  ),
)
const gaps = rounds.map((r) => r.nextGrantMs).filter((ms) => ms !== undefined)
console.log(JSON.stringify({ contended, rounds, medianNextGrantMs: gaps.length > 0 ? median(gaps) : undefined }))
process.exit(0)
