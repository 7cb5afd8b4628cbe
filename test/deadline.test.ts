// lib/deadline.ts: a load within its deadline, past it, with none, and ended by its flight's signal.
import t from 'tap'
import { withinDeadline } from '../lib/deadline.js'

const never = () => new Promise<string>(() => {})
const timedOut = () => new Error('timed out')

t.test('the value when the load settles first, its error when it fails', async (t) => {
  t.equal(await withinDeadline(Promise.resolve('v'), 60_000, new AbortController().signal, timedOut), 'v')
  await t.rejects(withinDeadline(Promise.reject(new Error('origin')), 60_000, new AbortController().signal, timedOut), {
    message: 'origin',
  })
})

t.test('the caller’s error once the deadline passes on a load that never settles', async (t) => {
  await t.rejects(withinDeadline(never(), 5, new AbortController().signal, timedOut), { message: 'timed out' })
})

t.test('0: no deadline, the load itself', async (t) => {
  const loading = Promise.resolve('v')
  t.equal(withinDeadline(loading, 0, new AbortController().signal, timedOut), loading)
})

t.test('a signal that aborted before, or aborts while waiting, ends it with the reason', async (t) => {
  const before = new AbortController()
  before.abort(new Error('flight ended'))
  await t.rejects(withinDeadline(never(), 60_000, before.signal, timedOut), { message: 'flight ended' })
  const during = new AbortController()
  const waiting = withinDeadline(never(), 60_000, during.signal, timedOut)
  during.abort(new Error('closed'))
  await t.rejects(waiting, { message: 'closed' })
})
