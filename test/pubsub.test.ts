// Publish/subscribe (lib/pubsub.ts): a message reaches the subscribers of its channel on every member,
// this one included, as bytes or JSON, over signed peer requests; publish names who took it and who
// could not be reached; a slow subscriber drops what overflows its queue. In-process peers with auth
// on; the 3-process test with a frozen member is test/pubsub-cluster.test.ts.
import t from 'tap'
import { InvalidOptionError, type MessageInfo } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { eventually } from './helpers/inproc.js'
import { startPeers } from './helpers/peers.js'

const auth = { secret: 'a-shared-secret-of-32-bytes-long' }

type Got = [unknown, MessageInfo]

t.test('a message reaches every member, the publisher included, as JSON or bytes', async (t) => {
  const tp = await startPeers(t, 3, { auth })
  const got: Got[][] = tp.peers.map((p) => {
    const seen: Got[] = []
    p.subscribe('news', (message, info) => {
      seen.push([message, info])
    })
    return seen
  })
  const other: unknown[] = []
  tp.peers[2]!.subscribe('other', (m) => {
    other.push(m)
  })
  const result = await tp.peers[1]!.publish('news', { hello: 'world', n: 1 })
  t.same([...result.delivered].sort(), [...tp.urls].sort(), 'delivered to every member')
  t.same(result.unreachable, [])
  await tp.peers[0]!.publish('news', Buffer.from([0, 1, 2, 255]))
  await eventually(() => got.every((s) => s.length === 2), 'both messages everywhere')
  for (const s of got) {
    t.same(
      s[0],
      [
        { hello: 'world', n: 1 },
        { channel: 'news', origin: tp.urls[1] },
      ],
      'JSON, with its channel and origin',
    )
    t.ok(Buffer.isBuffer(s[1]![0]), 'bytes arrive as a Buffer')
    t.same([...(s[1]![0] as Buffer)], [0, 1, 2, 255])
    t.equal(s[1]![1].origin, tp.urls[0])
  }
  t.same(other, [], 'another channel hears nothing')
})

t.test('unsubscribe stops delivery; bad channels and messages are refused and send nothing', async (t) => {
  const tp = await startPeers(t, 2, { auth, maxMessageBytes: 100 })
  const seen: unknown[] = []
  const off = tp.peers[1]!.subscribe('c', (m) => {
    seen.push(m)
  })
  await tp.peers[0]!.publish('c', 1)
  await eventually(() => seen.length === 1, 'the first message')
  off()
  await tp.peers[0]!.publish('c', 2)
  await tp.peers[0]!.publish('c', 3)
  t.same(seen, [1], 'nothing after unsubscribing')
  for (const [channel, message] of [
    ['', 1],
    ['x'.repeat(300), 1],
    [7, 1],
    ['c', undefined],
    ['c', () => 1],
    ['c', 'x'.repeat(200)],
  ] as [string, unknown][]) {
    await t.rejects(tp.peers[0]!.publish(channel, message), InvalidOptionError, `${String(channel).slice(0, 10)}: ${typeof message}`)
  }
  t.throws(() => tp.peers[0]!.subscribe('c', 'no' as never), InvalidOptionError)
})

t.test('a publish that is not signed is refused (401) and delivers nothing', async (t) => {
  const tp = await startPeers(t, 1, { auth })
  const seen: unknown[] = []
  tp.peers[0]!.subscribe('c', (m) => {
    seen.push(m)
  })
  const res = await fetch(`${tp.urls[0]}/_peercache/publish`, {
    method: 'POST',
    headers: { [HEADER.protocol]: String(PROTOCOL_VERSION), [HEADER.channel]: 'c', [HEADER.from]: 'http://127.0.0.1:1' },
    body: '"forged"',
  })
  t.equal(res.status, 401)
  await tp.peers[0]!.publish('c', 'signed')
  await eventually(() => seen.length === 1, 'the signed message')
  t.same(seen, ['signed'], 'only the signed message')
})

t.test('a subscriber that never finishes drops what overflows its queue; the others get everything', async (t) => {
  const tp = await startPeers(t, 2, { maxQueuedMessages: 3 })
  let calls = 0
  tp.peers[1]!.subscribe('c', () => {
    calls++
    return new Promise(() => {})
  })
  const fast: unknown[] = []
  tp.peers[1]!.subscribe('c', (m) => {
    fast.push(m)
  })
  for (let i = 0; i < 10; i++) await tp.peers[0]!.publish('c', i)
  await eventually(() => fast.length === 10, 'the fast subscriber got all ten')
  t.equal(calls, 1)
  t.equal(tp.peers[1]!.messagesDropped, 10 - 1 - 3, 'one taken, three queued, six dropped')
})

t.test('a member that is down is named unreachable at once; a closed peer refuses to publish', async (t) => {
  const tp = await startPeers(t, 2)
  await tp.peers[1]!.close()
  const result = await tp.peers[0]!.publish('c', 'x')
  t.same(result.delivered, [tp.urls[0]])
  t.same(result.unreachable, [tp.urls[1]])
  await t.rejects(tp.peers[1]!.publish('c', 'x'), { code: 'PEERCACHE_ERR_CLOSED' })
})
