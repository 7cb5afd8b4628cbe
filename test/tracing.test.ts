// The tracing channels peercache:load and peercache:fetch, seen by a subscriber as any tracer would
// (node:diagnostics_channel, no import of peercache's internals): every event of an origin load and
// of a key fetched from a peer, with contexts naming this peer, the group, the key and the peer asked.
import { AsyncLocalStorage } from 'node:async_hooks'
import diagnosticsChannel from 'node:diagnostics_channel'
import t from 'tap'
import { LoadError } from '../lib/index.js'
import { loaded, startGroupCluster } from './helpers/inproc.js'
import type { TapTest } from './helpers/tap.js'

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const
type Context = Record<string, unknown>

/** Records every event of `name` for peer `self`: [event, a copy of the context at that moment]. */
function record(t: TapTest, name: string, self: string): [string, Context][] {
  const seen: [string, Context][] = []
  const channel = diagnosticsChannel.tracingChannel<unknown, Context>(name)
  const handlers = Object.fromEntries(
    EVENTS.map((event) => [
      event,
      (ctx: Context) => {
        if (ctx.self === self) seen.push([event, { ...ctx }])
      },
    ]),
  ) as unknown as Parameters<typeof channel.subscribe>[0]
  channel.subscribe(handlers)
  t.teardown(() => channel.unsubscribe(handlers))
  return seen
}

t.test('a get from a peer: peercache:fetch at the asker, peercache:load at the owner', async (t) => {
  const c = await startGroupCluster(t, 3)
  const key = c.keyOf(0, 1)
  const loads = record(t, 'peercache:load', c.urls[0]!)
  const fetches = record(t, 'peercache:fetch', c.urls[2]!)
  t.equal(await c.groups[2]!.get(key), loaded(key, 1))

  t.same(
    fetches.map(([event]) => event),
    ['start', 'end', 'asyncStart', 'asyncEnd'],
    'the asker traced one fetch',
  )
  const [, fetched] = fetches.at(-1)!
  t.match(fetched, { self: c.urls[2], peer: c.urls[0], group: 'g', key, peek: false }, 'naming the owner asked, group and key')
  t.ok((fetched.batch as number) > 0, 'and the request the key went in')
  t.match(fetched.result, { bytes: Buffer.from(loaded(key, 1)) }, 'with the value it brought back')

  t.same(
    loads.map(([event]) => event),
    ['start', 'end', 'asyncStart', 'asyncEnd'],
    'the owner traced one origin load',
  )
  t.match(loads.at(-1)![1], { self: c.urls[0], group: 'g', key, result: loaded(key, 1) })
})

t.test('keys sent together share a batch; a failed load is an error event on both channels', async (t) => {
  const c = await startGroupCluster(t, 3)
  const [k1, k2] = [c.keyOf(0, 1, 'a'), c.keyOf(0, 1, 'b')]
  c.origin.value = (key, call) => {
    if (key === k2) throw new Error('the origin has no b')
    return loaded(key, 1) + call.by
  }
  const loads = record(t, 'peercache:load', c.urls[0]!)
  const fetches = record(t, 'peercache:fetch', c.urls[2]!)
  const [r1, r2] = await Promise.allSettled([c.groups[2]!.get(k1), c.groups[2]!.get(k2)])
  t.equal(r1.status, 'fulfilled')
  t.ok(r2.status === 'rejected' && r2.reason instanceof LoadError, 'k2 failed with a LoadError')

  const ended = fetches.filter(([event]) => event === 'asyncEnd').map(([, ctx]) => ctx)
  t.same(ended.map((ctx) => ctx.key).sort(), [k1, k2].sort(), 'one fetch context per key')
  t.equal(ended[0]!.batch, ended[1]!.batch, 'both went in one request')
  t.ok(
    fetches.some(([event, ctx]) => event === 'error' && ctx.key === k2 && ctx.error instanceof LoadError),
    'the fetch of k2 ended with an error event carrying the LoadError',
  )
  const loadError = loads.find(([event, ctx]) => event === 'error' && ctx.key === k2)
  t.ok(
    loadError && (loadError[1].error as Error).message === 'the origin has no b',
    "the owner's load error event carries what the loader threw",
  )
})

t.test("a store bound to peercache:load's start is the loader's async context (how a tracer parents spans)", async (t) => {
  const c = await startGroupCluster(t, 1)
  const store = new AsyncLocalStorage<string>()
  const channel = diagnosticsChannel.tracingChannel<unknown, Context>('peercache:load')
  channel.start.bindStore(store, (ctx) => `span for ${String(ctx.key)}`)
  t.teardown(() => channel.start.unbindStore(store))
  let inLoader: string | undefined
  c.origin.value = (key) => {
    inLoader = store.getStore()
    return key
  }
  await c.groups[0]!.get('k')
  t.equal(inLoader, 'span for k')
})
