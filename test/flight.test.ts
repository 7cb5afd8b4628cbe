// Singleflight: one call per key, shared by everyone who asks meanwhile; a call always ends (sync
// throw, rejection), leaving no entry behind; a waiter can leave without stopping the call for others.
import t from 'tap'
import { AbortError } from '../lib/errors.js'
import { type CallState, Flight } from '../lib/flight.js'

/** A promise with its resolve/reject, to end a call when the test says so. */
function deferred<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

t.test('concurrent runs of one key share one call', async (t) => {
  const flight = new Flight<string>()
  const d = deferred<string>()
  let starts = 0
  const runs = Array.from({ length: 1000 }, () =>
    flight.run('k', () => {
      starts++
      return d.promise
    }),
  )
  t.equal(starts, 1)
  t.equal(flight.size, 1)
  t.ok(flight.has('k'))
  d.resolve('v')
  t.same(await Promise.all(runs), Array(1000).fill('v'))
  t.equal(flight.size, 0, 'the call is gone once settled')
  await flight.run('k', () => {
    starts++
    return 'again'
  })
  t.equal(starts, 2, 'a run after the end starts a new call')
})

t.test('different keys get different calls', async (t) => {
  const flight = new Flight<string>()
  const seen: string[] = []
  await Promise.all(['a', 'b', 'a'].map((k) => flight.run(k, async () => (seen.push(k), k))))
  t.same(seen, ['a', 'b'])
})

t.test('a call always ends: sync throw, rejection, and the key is free again', async (t) => {
  for (const [what, start] of [
    [
      'sync throw',
      () => {
        throw new Error('sync boom')
      },
    ],
    ['rejection', () => Promise.reject(new Error('async boom'))],
    [
      'throw after await',
      async () => {
        await null
        throw new Error('late boom')
      },
    ],
  ] as const) {
    const flight = new Flight<string>()
    const waiters = Array.from({ length: 5 }, (_, i) => flight.run('k', start, i % 2 ? new AbortController().signal : undefined))
    const results = await Promise.allSettled(waiters)
    t.ok(
      results.every((r) => r.status === 'rejected' && /boom/.test((r.reason as Error).message)),
      `${what}: every waiter gets the error`,
    )
    t.equal(flight.size, 0, `${what}: no entry left`)
    t.equal(await flight.run('k', () => 'fresh'), 'fresh', `${what}: the next run starts a new call`)
  }
})

t.test('an aborted waiter leaves at once; the call goes on for the others and runs once', async (t) => {
  const flight = new Flight<string>()
  const d = deferred<string>()
  let starts = 0
  let callSignal: AbortSignal | undefined
  const start = (call: CallState) => {
    starts++
    callSignal = call.signal
    return d.promise
  }
  const leaving = new AbortController()
  const staying = new AbortController()
  const a = flight.run('k', start, leaving.signal)
  const b = flight.run('k', start, staying.signal)
  const c = flight.run('k', start)
  leaving.abort(new Error('caller gave up'))
  await t.rejects(a, { message: 'caller gave up' }, 'the aborted waiter rejects with its reason, before the call ends')
  t.equal(callSignal?.aborted, false, 'the call is not aborted while others wait')
  d.resolve('v')
  t.equal(await b, 'v')
  t.equal(await c, 'v')
  t.equal(starts, 1)
})

t.test('when every waiter leaves, the call signal aborts and the next run starts afresh', async (t) => {
  const flight = new Flight<string>()
  let callSignal: AbortSignal | undefined
  const first = deferred<string>()
  const controllers = [new AbortController(), new AbortController()]
  const waits = controllers.map((c) =>
    flight.run(
      'k',
      (call) => {
        callSignal = call.signal
        return first.promise
      },
      c.signal,
    ),
  )
  controllers[0]!.abort()
  t.equal(callSignal!.aborted, false, 'one waiter left, one stays')
  controllers[1]!.abort()
  t.equal(callSignal!.aborted, true, 'the last waiter leaving aborts the call')
  const results = await Promise.allSettled(waits)
  t.ok(
    results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError'),
    'reason defaults to an AbortError',
  )
  t.equal(flight.size, 0)
  t.equal(await flight.run('k', () => 'second'), 'second', 'a new call, not the abandoned one')
  first.resolve('late')
})

t.test('a waiter without a signal pins the call: it is never aborted', async (t) => {
  const flight = new Flight<string>()
  const d = deferred<string>()
  let callSignal: AbortSignal | undefined
  const ac = new AbortController()
  const pinned = flight.run('k', (call) => ((callSignal = call.signal), d.promise))
  const leaving = flight.run('k', () => d.promise, ac.signal)
  ac.abort()
  await t.rejects(leaving)
  t.equal(callSignal!.aborted, false)
  d.resolve('v')
  t.equal(await pinned, 'v')
})

t.test('an already aborted signal rejects without starting anything', async (t) => {
  const flight = new Flight<string>()
  let started = false
  await t.rejects(
    flight.run('k', () => ((started = true), 'v'), AbortSignal.abort(new Error('already'))),
    { message: 'already' },
  )
  t.equal(started, false)
  t.equal(flight.size, 0)
  t.ok(new AbortError() instanceof Error)
})

t.test('forget detaches a call: its waiters still get the result, which is marked forgotten', async (t) => {
  const flight = new Flight<string>()
  const d = deferred<string>()
  let state: { forgotten: boolean } | undefined
  const old = flight.run('k', (call) => ((state = call), d.promise))
  t.equal(flight.forget('k'), true)
  t.equal(flight.forget('k'), false)
  t.equal(state!.forgotten, true)
  t.equal(await flight.run('k', () => 'new'), 'new', 'a later run starts a new call')
  d.resolve('old')
  t.equal(await old, 'old')
  t.equal(flight.size, 0)
})

t.test('abortAll aborts every call and frees every key', async (t) => {
  const flight = new Flight<string>()
  const signals: AbortSignal[] = []
  const start = ({ signal: s }: CallState) => {
    signals.push(s)
    return new Promise<string>((_, reject) => s.addEventListener('abort', () => reject(s.reason)))
  }
  const runs = ['a', 'b', 'c'].map((k) => flight.run(k, start))
  flight.abortAll(new Error('closing'))
  t.ok(signals.every((s) => s.aborted))
  t.equal(flight.size, 0)
  const results = await Promise.allSettled(runs)
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'closing'))
})

t.test('a call makes its AbortController only when its signal is asked for', async (t) => {
  const flight = new Flight<string>()
  let state: CallState | undefined
  const d = deferred<string>()
  const ac = new AbortController()
  const run = flight.run('k', (call) => ((state = call), d.promise), ac.signal)
  ac.abort()
  await t.rejects(run)
  t.equal(state!.aborted, true, 'abandoned: aborted without a signal ever made')
  t.equal(state!.signal.aborted, true, 'a signal asked for afterwards is already aborted')
  t.ok(state!.reason !== undefined, 'with the reason')
  d.resolve('late')
})

t.test("current(key) is the call a run started or joined; its note, set by the call's function, reaches every waiter", async (t) => {
  const flight = new Flight<string, 'here' | 'there'>()
  const d = deferred<string>()
  const first = flight.run('k', (call) => d.promise.then((v) => ((call.note = 'there'), v)))
  const call = flight.current('k')
  const second = flight.run('k', () => Promise.resolve('not called'))
  t.equal(flight.current('k'), call, 'the second run joined the same call')
  t.equal(call!.note, undefined, 'no note before the function sets one')
  d.resolve('v')
  t.same(await Promise.all([first, second]), ['v', 'v'])
  t.equal(call!.note, 'there', 'every waiter reads the note once its value arrived')
  t.equal(flight.current('k'), undefined, 'the key is free again')
})
