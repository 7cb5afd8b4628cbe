// Mirrors lib/batch-answer.ts: a batch answered by a real Peer's group on a real server: one frame per key, from the cache in one answer with its length, loads streamed after early headers with heartbeats; a key named twice answered once; the byte budget (retry, no load past it); bad bodies refused; the asker hanging up ends the loads it alone waited for; heartbeatMs's bounds.
import t from 'tap'
import { request } from 'undici'
import { answerBatch, heartbeatMs, MAX_BATCH_BODY_BYTES } from '../lib/batch-answer.js'
import { type BatchItem, encodeBatch, type Frame, FrameParser, HEARTBEAT_INDEX } from '../lib/frames.js'
import { Peer } from '../lib/index.js'
import { HEADER, MAX_BATCH_KEYS } from '../lib/protocol.js'
import { settledWithin } from './helpers/bound.js'
import { httpServer } from './helpers/http-server.js'
import type { TapTest } from './helpers/tap.js'

const BOUND_MS = 10_000

/** A solo peer's group 'g' (values `sizes[key]` bytes, else `v:<key>`) answering batches on a real server; `hold` keeps a key's load waiting. */
async function batchPeer(t: TapTest, maxBatchBytes = 1 << 20, hold?: (key: string) => Promise<void> | undefined) {
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  const loads: string[] = []
  const aborted: string[] = []
  let abortedTwo: (() => void) | undefined
  /** Resolves once two loads were aborted. */
  const twoAborted = new Promise<void>((resolve) => (abortedTwo = resolve))
  const group = peer.group('g', {
    maxBytes: 64 << 20,
    load: async (key: string, ctx) => {
      loads.push(key)
      ctx.signal.addEventListener('abort', () => {
        if (aborted.push(key) === 2) abortedTwo?.()
      })
      await hold?.(key)
      const m = /^(\d+)b$/.exec(key)
      return m ? Buffer.alloc(Number(m[1]), 1) : Buffer.from(`v:${key}`)
    },
  })
  const { url } = await httpServer(t, (req, res) => {
    void answerBatch({ group: (name) => (name === 'g' ? group.ownerSide : undefined), maxBatchBytes }, req, res, undefined)
  })
  return { url: `${url}/batch`, group, loads, aborted, twoAborted }
}

async function ask(url: string, body: Buffer, headers: Record<string, string> = {}) {
  const r = await request(url, { method: 'POST', body, headers })
  const bytes = Buffer.from(await r.body.arrayBuffer())
  return { status: r.statusCode, headers: r.headers, bytes, frames: r.statusCode === 200 ? new FrameParser().push(bytes) : [] }
}

const keyed = (frames: Frame[]) => frames.filter((f) => f.index !== HEARTBEAT_INDEX).map((f) => [f.index, f.status, f.payload.toString()])

t.test('heartbeatMs: the interval the asker asked for, within 20 ms..60 s; 250 ms when it named none or nonsense', async (t) => {
  t.equal(heartbeatMs('1000'), 1000)
  t.equal(heartbeatMs('5'), 20)
  t.equal(heartbeatMs('999999999'), 60_000)
  for (const bad of [undefined, '', 'abc', '-5', '1.5', '1e3', '1234567890', ['100', '200']])
    t.equal(heartbeatMs(bad), 250, JSON.stringify(bad))
  t.equal(MAX_BATCH_BODY_BYTES, 8 << 20)
})

t.test('every key cached: one answer with its length, a frame per key at its index', async (t) => {
  const p = await batchPeer(t)
  await Promise.all(['a', 'b'].map((k) => p.group.get(k)))
  const a = await ask(
    p.url,
    encodeBatch([
      { group: 'g', key: 'b' },
      { group: 'g', key: 'a' },
      { group: 'g', key: 'nope', peek: true },
      { group: 'other', key: 'a' },
    ]),
  )
  t.equal(a.status, 200)
  t.equal(Number(a.headers['content-length']), a.bytes.length, 'content-length: all from the cache')
  t.same(keyed(a.frames), [
    [0, 'ok', 'v:b'],
    [1, 'ok', 'v:a'],
    [2, 'miss', ''],
    [3, 'unknown-group', 'no group "other" on this peer'],
  ])
  t.same(p.loads, ['a', 'b'], 'no load for the batch')
})

t.test('a key named twice is answered once; a peek and a get of the same key are two questions', async (t) => {
  const p = await batchPeer(t)
  const a = await ask(
    p.url,
    encodeBatch([
      { group: 'g', key: 'k' },
      { group: 'g', key: 'k', peek: true },
      { group: 'g', key: 'k' },
    ]),
  )
  const frames = keyed(a.frames).sort((x, y) => Number(x[0]) - Number(y[0]))
  t.same(frames[0], [0, 'ok', 'v:k'])
  t.same(frames[1]?.slice(0, 2), [1, 'miss'], 'the peek, asked before the load ended: a miss')
  t.same(frames[2], [2, 'bad-request', 'named twice in this batch (answered at index 0)'])
  t.same(p.loads, ['k'])
})

t.test(
  'the byte budget: the first value always goes; past the budget keys are answered retry and nothing is loaded for them',
  async (t) => {
    const p = await batchPeer(t, 100)
    await Promise.all(['60b', '30b'].map((k) => p.group.get(k)))
    // 60 spent; 30 more is within 100; a further 60 would pass it
    await p.group.get('61b')
    const a = await ask(
      p.url,
      encodeBatch([
        { group: 'g', key: '60b' },
        { group: 'g', key: '30b' },
        { group: 'g', key: '61b' },
      ]),
    )
    t.same(
      keyed(a.frames).map((f) => f.slice(0, 2)),
      [
        [0, 'ok'],
        [1, 'ok'],
        [2, 'retry'],
      ],
    )
    await p.group.get('200b')
    const big = await ask(
      p.url,
      encodeBatch([
        { group: 'g', key: '200b' },
        { group: 'g', key: 'uncached' },
        { group: 'other', key: 'x' },
      ]),
    )
    const frames = keyed(big.frames).sort((x, y) => Number(x[0]) - Number(y[0]))
    t.same(frames[0]?.slice(0, 2), [0, 'ok'], 'a first (cached) value larger than the budget still goes')
    t.equal(big.frames.find((f) => f.index === 0)?.payload.length, 200)
    t.same(frames[1], [1, 'retry', ''], 'after it: retry')
    t.same(frames[2]?.slice(0, 2), [2, 'unknown-group'], 'a group not served is still told so')
    t.same(p.loads, ['60b', '30b', '61b', '200b'], 'no load for the key answered retry')
  },
)

t.test('bad requests: not a batch, an empty batch, too many keys: 400 and nothing loaded', async (t) => {
  const p = await batchPeer(t)
  const garbage = await ask(p.url, Buffer.from([0xff, 0xff, 0xff]))
  t.equal(garbage.status, 400)
  t.match(JSON.parse(garbage.bytes.toString()), { error: 'bad-request', message: /^not a batch: / })
  const empty = await ask(p.url, encodeBatch([]))
  t.equal(empty.status, 400)
  t.match(JSON.parse(empty.bytes.toString()), { error: 'bad-request', message: `a batch holds 1 to ${MAX_BATCH_KEYS} keys` })
  const items: BatchItem[] = Array.from({ length: MAX_BATCH_KEYS + 1 }, (_, i) => ({ group: 'g', key: `k${i}` }))
  const many = await ask(p.url, encodeBatch(items))
  t.equal(many.status, 400)
  t.equal(many.headers[HEADER.error], 'bad-request')
  t.equal(many.headers.connection, 'close', 'the rest of the body is not read')
  t.same(p.loads, [])
})

t.test('keys that load: headers at once (before any value), heartbeats while the origin works, then the values', async (t) => {
  let release: (() => void) | undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  const p = await batchPeer(t, 1 << 20, (key) => (key === 'slow' ? held : undefined))
  await p.group.get('cached')
  const r = await settledWithin(
    request(p.url, {
      method: 'POST',
      body: encodeBatch([
        { group: 'g', key: 'cached' },
        { group: 'g', key: 'slow' },
      ]),
      headers: { [HEADER.heartbeat]: '20' },
    }),
    BOUND_MS,
  )
  if (r === 'hung') return t.fail('no headers while the load was held')
  t.equal(r.statusCode, 200, 'headers while the load is held')
  t.equal(r.headers['content-length'], undefined, 'streamed: no length')
  const parser = new FrameParser()
  const seen: Frame[] = []
  const heartbeat = new Promise<void>((resolve) => {
    r.body.on('data', (chunk: Buffer) => {
      for (const f of parser.push(chunk)) {
        seen.push({ ...f, payload: Buffer.from(f.payload) })
        if (f.index === HEARTBEAT_INDEX) resolve()
      }
    })
  })
  const ended = new Promise<void>((resolve) => r.body.once('end', resolve))
  t.not(await settledWithin(heartbeat, BOUND_MS), 'hung', 'a heartbeat while the origin works')
  t.same(keyed(seen), [[0, 'ok', 'v:cached']], 'the cached value went at once, before the load ended')
  release!()
  t.not(await settledWithin(ended, BOUND_MS), 'hung', 'the answer ends after the last value')
  t.same(keyed(seen), [
    [0, 'ok', 'v:cached'],
    [1, 'ok', 'v:slow'],
  ])
  t.ok(
    seen.filter((f) => f.index === HEARTBEAT_INDEX).every((f) => f.status === 'heartbeat' && f.payload.length === 0),
    'heartbeats are empty frames at HEARTBEAT_INDEX',
  )
})

t.test('the asker hanging up takes its waits off their flights: a load nobody else waits for is aborted', async (t) => {
  const never = new Promise<void>(() => {})
  const p = await batchPeer(t, 1 << 20, () => never)
  const ac = new AbortController()
  const r = await settledWithin(
    request(p.url, {
      method: 'POST',
      body: encodeBatch([
        { group: 'g', key: 'x' },
        { group: 'g', key: 'y' },
      ]),
      signal: ac.signal,
    }),
    BOUND_MS,
  )
  if (r === 'hung') return t.fail('no headers')
  t.same(p.loads, ['x', 'y'], 'both loads started')
  r.body.on('error', () => {}) // the abort errors the body: expected
  ac.abort()
  t.not(await settledWithin(p.twoAborted, BOUND_MS), 'hung', 'both loads were told nobody waits')
  t.same(p.aborted.sort(), ['x', 'y'])
})
