// The debug endpoints of lib/profile.ts on a real listening peer: a CPU profile that holds the code
// that ran while it was taken, a heap snapshot, off by default, signed when auth is on, one profile
// at a time, bad `seconds` refused, and a requester hanging up stops the profile.
import t from 'tap'
import { request } from 'undici'
import { Peer, signRequest } from '../lib/index.js'
import type { TapTest } from './helpers/tap.js'

const SECRET = 'profile-test-secret-of-32-bytes!'

interface CpuProfile {
  nodes: { callFrame: { functionName: string; url: string } }[]
  samples: number[]
  startTime: number
  endTime: number
}

async function listening(t: TapTest, options: { profiling?: boolean; auth?: { secret: string } } = {}) {
  const peer = new Peer({ self: 'http://127.0.0.1:1', ...options })
  const address = await peer.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => peer.close())
  const base = `http://127.0.0.1:${address.port}/_peercache/debug/`
  return { peer, base }
}

/** Work the profile must show: a function with a name no library has. */
function peercacheProfileTestSpin(until: number): number {
  let x = 0
  while (Date.now() < until) x += Math.sqrt(x + 1)
  return x
}

t.test('a CPU profile of the seconds asked for holds the code that ran meanwhile', async (t) => {
  const { peer, base } = await listening(t, { profiling: true })
  const group = peer.group('g', { maxBytes: 1 << 20, codec: 'string', load: (k) => `v ${k}` })
  const answer = request(`${base}profile?seconds=1`)
  // Busy for a while inside the profile's second, in slices so the server can answer at its end.
  const spin = (async () => {
    for (let i = 0; i < 10; i++) {
      peercacheProfileTestSpin(Date.now() + 30)
      await group.get(`k${i}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  const res = await answer
  await spin
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-disposition'], /attachment; filename="peercache-\d+-\d+\.cpuprofile"/)
  const profile = (await res.body.json()) as CpuProfile
  t.ok(profile.samples.length > 0, 'it has samples')
  t.ok(profile.endTime - profile.startTime >= 900_000, 'it ran about the second asked for (µs)')
  const names = new Set(profile.nodes.map((n) => n.callFrame.functionName))
  t.ok(names.has('peercacheProfileTestSpin'), 'the busy function is in it')
})

t.test('a heap snapshot', async (t) => {
  const { base } = await listening(t, { profiling: true })
  const res = await request(`${base}heap`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-disposition'], /\.heapsnapshot"$/)
  const snapshot = (await res.body.json()) as { snapshot: { meta: { node_fields: string[] }; node_count: number }; nodes: number[] }
  t.ok(snapshot.snapshot.node_count > 1000, 'a heap of many nodes')
  t.equal(snapshot.nodes.length, snapshot.snapshot.node_count * snapshot.snapshot.meta.node_fields.length, 'whole')
})

t.test('off by default: 404, and nothing is profiled', async (t) => {
  const { base } = await listening(t)
  for (const what of ['profile?seconds=1', 'heap']) {
    const res = await request(`${base}${what}`)
    t.equal(res.statusCode, 404, what)
    t.match(await res.body.json(), { message: /profiling: true/ })
  }
})

t.test('bad seconds and methods are refused before anything starts', async (t) => {
  const { base } = await listening(t, { profiling: true })
  for (const seconds of ['0', '61', '1.5', 'abc', '-1', '']) {
    const res = await request(`${base}profile?seconds=${seconds}`)
    t.equal(res.statusCode, 400, `seconds=${seconds}`)
    t.match(await res.body.json(), { error: 'bad-request', message: /1 to 60/ })
  }
  const post = await request(`${base}heap`, { method: 'POST' })
  t.equal(post.statusCode, 405)
  await post.body.dump()
  const unknown = await request(`${base}goroutine`)
  t.equal(unknown.statusCode, 404)
  await unknown.body.dump()
})

t.test('one profile at a time; a requester hanging up stops its profile', async (t) => {
  const { base } = await listening(t, { profiling: true })
  const ac = new AbortController()
  const first = request(`${base}profile?seconds=60`, { signal: ac.signal })
  first.catch(() => {})
  // The first is running once a second is refused as busy (asked a little later, so that it comes second).
  await new Promise((resolve) => setTimeout(resolve, 200))
  let second = await request(`${base}profile?seconds=1`)
  for (let i = 0; i < 100 && second.statusCode !== 409; i++) {
    await second.body.dump()
    second = await request(`${base}profile?seconds=1`)
  }
  t.equal(second.statusCode, 409, 'busy while the first runs')
  t.match(await second.body.json(), { error: 'busy' })
  ac.abort()
  await t.rejects(first)
  // The aborted profile stops within a check or two, not after its 60 s: the next one is taken.
  let third = await request(`${base}profile?seconds=1`)
  for (let i = 0; i < 100 && third.statusCode === 409; i++) {
    await third.body.dump()
    await new Promise((resolve) => setTimeout(resolve, 50))
    third = await request(`${base}profile?seconds=1`)
  }
  t.equal(third.statusCode, 200, 'a new profile once the abandoned one stopped')
  await third.body.dump()
})

t.test('with auth: unsigned is refused, signRequest signs once, a replay is refused', async (t) => {
  const { base } = await listening(t, { profiling: true, auth: { secret: SECRET } })
  const url = `${base}profile?seconds=1`
  const unsigned = await request(url)
  t.equal(unsigned.statusCode, 401)
  await unsigned.body.dump()
  const headers = signRequest({ secret: SECRET }, 'GET', url)
  const signed = await request(url, { headers })
  t.equal(signed.statusCode, 200)
  t.ok(((await signed.body.json()) as CpuProfile).samples.length > 0)
  const replayed = await request(url, { headers })
  t.equal(replayed.statusCode, 401, 'the same headers again')
  t.match(await replayed.body.json(), { message: /replayed/ })
  const wrong = await request(url, { headers: signRequest({ secret: `${SECRET}-other` }, 'GET', url) })
  t.equal(wrong.statusCode, 401, 'another secret')
  await wrong.body.dump()
})

t.test('profiling must be a boolean', async (t) => {
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', profiling: 'yes' as unknown as boolean }), {
    name: 'InvalidOptionError',
    message: /profiling/,
  })
})

t.test('closing cuts a running profile short with 503 closing', async (t) => {
  const { peer, base } = await listening(t, { profiling: true })
  const res = request(`${base}profile?seconds=60`)
  // Started once a second request is refused as busy.
  for (let i = 0; i < 100; i++) {
    const probe = await request(`${base}profile?seconds=1`)
    await probe.body.dump()
    if (probe.statusCode === 409) break
  }
  const closed = peer.close()
  const answer = await res
  t.equal(answer.statusCode, 503)
  t.match(await answer.body.json(), { error: 'closing' })
  await closed
})
