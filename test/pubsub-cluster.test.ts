// Publish/subscribe between 3 OS processes: a message reaches the subscribers on every process; with
// one process frozen (SIGSTOP), then killed (SIGKILL), publish resolves naming it unreachable while
// the others get the message.
import t from 'tap'
import type { PublishResult } from '../lib/index.js'
import { until } from './helpers/bound.js'
import { startCluster, type Member } from './helpers/cluster.js'

interface Got {
  message: unknown
  channel: string
  origin: string
}

const cluster = await startCluster(t, {
  size: 3,
  groups: {},
  peer: { peerTimeoutMs: 500, auth: { secret: 'a-shared-secret-of-32-bytes-long' } },
})
const [a, b, c] = cluster.members as [Member, Member, Member]
for (const m of [a, b, c]) await m.request('subscribe', { channel: 'news' })

const got = (m: Member) => m.request<Got[]>('messages', { channel: 'news' })

t.test('a message reaches every process', async (t) => {
  const result = await b.request<PublishResult>('publish', { channel: 'news', message: { n: 1 } })
  t.same([...result.delivered].sort(), [...cluster.urls].sort())
  t.same(result.unreachable, [])
  await until('every process got it', async () => (await Promise.all([a, b, c].map(got))).every((g) => g.length === 1))
  for (const m of [a, b, c]) t.same(await got(m), [{ message: { n: 1 }, channel: 'news', origin: b.url }], m.name)
  await a.request('publish', { channel: 'news', bytes: Buffer.from('raw').toString('base64') })
  await until('the bytes too', async () => (await got(c)).length === 2)
  t.same((await got(c))[1]!.message, { bytes: Buffer.from('raw').toString('base64') }, 'bytes arrive as bytes')
})

t.test('a frozen process, then a killed one, is named unreachable; the others get the message', async (t) => {
  c.stop()
  try {
    const frozen = await a.request<PublishResult>('publish', { channel: 'news', message: 'while c is frozen' })
    t.same(frozen.unreachable, [c.url], 'the frozen process is unreachable')
    t.same([...frozen.delivered].sort(), [a.url, b.url].sort(), 'the others took it')
    await until('b got it', async () => (await got(b)).some((g) => g.message === 'while c is frozen'))
  } finally {
    c.cont()
  }
  await c.kill('SIGKILL')
  const killed = await b.request<PublishResult>('publish', { channel: 'news', message: 'after c died' })
  t.same(killed.unreachable, [c.url], 'the killed process is unreachable')
  t.same([...killed.delivered].sort(), [a.url, b.url].sort())
  await until('a got it', async () => (await got(a)).some((g) => g.message === 'after c died'))
})
