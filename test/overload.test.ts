// The bound on loads for peers: `concurrency` run, `maxQueued` wait, the next is refused at once
// with OverloadedError and starts nothing; room comes back as loads settle, failed ones too.
import t from 'tap'
import { PeercacheError } from '../lib/errors.js'
import { LoadLimiter, OverloadedError } from '../lib/overload.js'

/** A load the test finishes by hand. */
function gate() {
  let open!: () => void
  let fail!: (e: Error) => void
  const done = new Promise<void>((resolve, reject) => ((open = resolve), (fail = reject)))
  return { done, open, fail }
}

t.test('concurrency run, maxQueued wait, the next is refused and never started', async (t) => {
  const limiter = new LoadLimiter('g', 2, 3, 250)
  const gates = Array.from({ length: 5 }, gate)
  let started = 0
  const runs = gates.map((g) =>
    limiter.run(async () => {
      started++
      await g.done
    }),
  )
  await new Promise((r) => setImmediate(r))
  t.equal(started, 2, 'two run')
  t.same(limiter.counts, { running: 2, queued: 3 })
  t.ok(limiter.full)
  let refusedStarted = false
  const err = t.throws(() =>
    limiter.run(async () => {
      refusedStarted = true
    }),
  ) as OverloadedError
  t.ok(err instanceof OverloadedError && err instanceof PeercacheError, 'an OverloadedError, a PeercacheError')
  t.equal(err.code, 'PEERCACHE_ERR_OVERLOADED')
  t.equal(err.group, 'g')
  t.equal(err.retryAfterMs, 250)
  t.notOk(refusedStarted, 'the refused load did not start')
  // A failed load frees its room as a finished one does.
  gates[0]!.fail(new Error('origin down'))
  await t.rejects(runs[0]!, /origin down/)
  t.notOk(limiter.full, 'room again')
  const late = limiter.run(async () => 'late')
  for (const g of gates.slice(1)) g.open()
  await Promise.all(runs.slice(1))
  t.equal(await late, 'late')
  t.same(limiter.counts, { running: 0, queued: 0 })
  t.equal(started, 5, 'every admitted load ran')
})
