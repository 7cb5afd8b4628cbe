// Mirrors lib/hint-watch.ts: HintWatch's TCP attempts against real loopback listeners: a listening peer is reported, wanted() stops a watch, close() stops all; refused attempts are counted back.
import net from 'node:net'
import t from 'tap'
import { HintWatch, type HintWatchOptions } from '../lib/hint-watch.js'
import { freePort } from './helpers/net.js'
import type { TapTest } from './helpers/tap.js'

/** A TCP listener on loopback `port` (0: any) that counts the connections it accepts and closes them. */
async function listener(t: TapTest, port = 0) {
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    socket.on('error', () => {})
    socket.end()
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, accepted: () => accepted }
}

/** A HintWatch closed at teardown, with `reachable` resolving `next()`'s promises in order. */
function watcher(t: TapTest, options: Partial<HintWatchOptions> = {}) {
  const reached: string[] = []
  let wake: () => void = () => {}
  const watch = new HintWatch({
    everyMs: 5,
    timeoutMs: 5000,
    maxAttempts: 2,
    wanted: () => true,
    reachable: (peer) => {
      reached.push(peer)
      wake()
    },
    ...options,
  })
  t.teardown(() => watch.close())
  /** Resolves once `reachable` has been called `n` times in all. */
  const reachedCount = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (reached.length >= n ? resolve() : undefined)
      wake = check
      check()
    })
  return { watch, reached, reachedCount }
}

t.test('a peer that accepts a connection is reported reachable, by its URL as given', async (t) => {
  const peer = await listener(t)
  const { watch, reached, reachedCount } = watcher(t)
  watch.watch(peer.url)
  await reachedCount(1)
  t.equal(reached[0], peer.url)
  t.ok(peer.accepted() >= 1, 'a real TCP connection was made')
})

t.test('wanted() turning false stops the watch; the peer can then be watched anew', async (t) => {
  const peer = await listener(t)
  let wanted = true
  const asked: boolean[] = []
  const { watch, reached, reachedCount } = watcher(t, {
    wanted: () => {
      asked.push(wanted)
      return wanted
    },
  })
  watch.watch(peer.url)
  await reachedCount(1)
  wanted = false
  // A second watch of a watched peer is ignored: only once the first stopped does a new one start.
  const before = reached.length
  const { watch: control, reachedCount: controlReached } = watcher(t)
  control.watch(peer.url)
  await controlReached(3) // a few intervals went by, seen through another watch of the same peer
  t.equal(asked.at(-1), false, 'wanted() said no, and was not asked again')
  watch.watch(peer.url)
  wanted = true
  await reachedCount(before + 1)
  t.ok(reached.length > before, 'watched anew: the stopped watch let go of the peer')
})

t.test('close() stops every watch: no attempt, no report after it, and watch() does nothing', async (t) => {
  const peer = await listener(t)
  let asked = 0
  const { watch, reached } = watcher(t, {
    wanted: () => {
      asked++
      return true
    },
  })
  watch.close()
  watch.watch(peer.url)
  const { watch: control, reachedCount: controlReached } = watcher(t)
  control.watch(peer.url)
  await controlReached(3)
  t.same([asked, reached.length], [0, 0], 'a closed watch asks and reports nothing')
})

// A refused attempt's 'error' comes on a socket Node has destroyed already: the attempt must still be
// counted back, else after maxAttempts refusals a peer that comes back is never noticed (fixed with this test).
t.test('refused connections (no listener yet) do not use up the attempts: a peer that listens later is reported', async (t) => {
  // The watch's timer is unref'd: something must keep this process alive while it works.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const port = await freePort()
  let asked = 0
  let onAsked: () => void = () => {}
  const askedMore = (n: number) =>
    new Promise<void>((resolve) => {
      const target = asked + n
      onAsked = () => (asked >= target ? resolve() : undefined)
    })
  const { watch, reached, reachedCount } = watcher(t, {
    wanted: () => {
      asked++
      onAsked()
      return true
    },
  })
  watch.watch(`http://127.0.0.1:${port}`)
  await askedMore(10) // several attempts refused, more than maxAttempts (2)
  const peer = await listener(t, port)
  // Bounded by count: 200 more ticks of the watch (about a second) give it ample chances to connect.
  await Promise.race([reachedCount(1), askedMore(200)])
  t.ok(reached.length > 0, `reported once it listened (${peer.accepted()} connections accepted)`)
})
