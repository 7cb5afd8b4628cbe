// The owner's side of the peer stream: the upgrade is checked as every peer request is (a bad
// signature or a replay: 401 and no upgrade), frames are answered as a batch answers them, with
// heartbeats while loads run, over https with mutual TLS too; close() ends the streams it took.
import t from 'tap'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { Auth } from '../lib/auth.js'
import { FrameParser, type Frame, HEARTBEAT_INDEX } from '../lib/frames.js'
import { PeerUnavailableError } from '../lib/index.js'
import { HEADER, PROTOCOL_VERSION } from '../lib/protocol.js'
import { encodeStreamRequest, STREAM_UPGRADE } from '../lib/stream-frames.js'
import { settledWithin } from './helpers/bound.js'
import { batches, client, servePeer } from './helpers/streams.js'
import { makePki, opensslAvailable } from './helpers/tls.js'

const BOUND_MS = 20_000
const SECRET = 'a shared secret of the test peers'
const PATH = '/_peercache/stream'

/** Asks `url` for the upgrade with `headers`: the socket once upgraded, or the refusal's status, headers and body. */
function askUpgrade(url: string, headers: Record<string, string>) {
  return new Promise<{ socket: Duplex } | { status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(`${url}${PATH}`, {
      headers: { connection: 'upgrade', upgrade: STREAM_UPGRADE, [HEADER.protocol]: String(PROTOCOL_VERSION), ...headers },
    })
    req.once('upgrade', (_res, socket) => resolve({ socket }))
    req.once('response', (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.once('error', reject)
    req.end()
  })
}

/** Frames read from `socket` until `done` says enough. */
function readFrames(socket: Duplex, done: (frames: Frame[]) => boolean): Promise<Frame[]> {
  const parser = new FrameParser()
  const frames: Frame[] = []
  return new Promise((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      for (const f of parser.push(chunk)) frames.push({ ...f, payload: Buffer.from(f.payload) })
      if (done(frames)) resolve(frames)
    })
  })
}

t.test('the upgrade is signed: a bad signature or a replay gets 401 and no stream; a good one is answered', async (t) => {
  const owner = await servePeer(t, { auth: { secret: SECRET } })
  const from = 'http://127.0.0.1:1'
  const wrong = new Auth({ secret: 'another secret of sixteen bytes+' }).sign('GET', PATH, from)
  const bad = await askUpgrade(owner.url, { [HEADER.from]: from, ...wrong })
  t.match(bad, { status: 401, headers: { [HEADER.error]: 'unauthorized' } }, 'refused with 401 unauthorized')
  if ('body' in bad) t.match(JSON.parse(bad.body), { error: 'unauthorized', message: /bad-signature/ }, 'the reason in the body')
  const unsigned = await askUpgrade(owner.url, { [HEADER.from]: from })
  t.match(unsigned, { status: 401 }, 'an unsigned one too')

  const signed = new Auth({ secret: SECRET }).sign('GET', PATH, from)
  const good = await askUpgrade(owner.url, { [HEADER.from]: from, ...signed })
  t.ok('socket' in good, 'a signed one is upgraded')
  if ('socket' in good) {
    const frames = readFrames(good.socket, (f) => f.length === 2)
    good.socket.write(
      Buffer.concat([encodeStreamRequest(7, { group: 'g', key: 'a' }), encodeStreamRequest(9, { group: 'nope', key: 'b' })]),
    )
    const [a, b] = (await frames).sort((x, y) => x.index - y.index)
    t.match(a, { index: 7, status: 'ok' }, 'answered under its id')
    t.equal(a?.payload.toString(), 'v:a', 'with its value')
    t.match(b, { index: 9, status: 'unknown-group' }, 'an unknown group answered as in a batch')
    good.socket.destroy()
  }
  const replay = await askUpgrade(owner.url, { [HEADER.from]: from, ...signed })
  t.match(replay, { status: 401 }, 'the same signature again is refused (a replay)')
  if ('body' in replay) t.match(replay.body, /replayed/, 'as a replay')
})

t.test('heartbeats while a load runs; a frame past the limits ends the stream', async (t) => {
  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const owner = await servePeer(t, {}, { hold: (key) => (key === 'slow' ? gate : undefined) })
  const up = await askUpgrade(owner.url, { [HEADER.heartbeat]: '20' })
  if (!('socket' in up)) return t.fail('not upgraded')
  const frames = readFrames(up.socket, (f) => f.some((x) => x.index === HEARTBEAT_INDEX))
  up.socket.write(encodeStreamRequest(1, { group: 'g', key: 'slow' }))
  const heard = await settledWithin(frames, BOUND_MS)
  t.not(heard, 'hung', 'a heartbeat frame came while the load ran')
  open()
  const closed = new Promise((resolve) => up.socket.once('close', resolve))
  const huge = Buffer.alloc(11)
  huge.writeUInt32LE(2, 0)
  huge.writeUInt16LE(1, 4)
  huge.write('g', 6)
  huge.writeUInt32LE(1 << 30, 7) // a key of 1 GiB
  up.socket.write(huge)
  t.not(await settledWithin(closed, BOUND_MS), 'hung', 'the owner ended the stream')
})

t.test(
  'over https with mutual TLS: the upgrade happens on the TLS socket',
  { skip: opensslAvailable() ? false : 'openssl is not available' },
  async (t) => {
    const pki = makePki(2)
    const owner = await servePeer(t, {}, { tls: { ...pki.peers[0]!, ca: pki.ca, requestCert: true } })
    const c = client(t, { tls: { ca: pki.ca, ...pki.peers[1]! } })
    const got = await Promise.all(['a', 'b', 'c'].map((k) => c.get(owner.url, 'g', k)))
    t.same(
      got.map((e) => e.bytes.toString()),
      ['v:a', 'v:b', 'v:c'],
      'answered',
    )
    t.equal(owner.streams.length, 1, 'on a stream')
    t.equal(batches(owner.requests), 0, 'no batch request')
  },
)

t.test('close() ends the streams it took; the asker’s next get opens no stream to a closed peer', async (t) => {
  const owner = await servePeer(t, {})
  const c = client(t)
  await c.get(owner.url, 'g', 'a')
  t.equal(owner.streams.length, 1, 'a stream is open')
  const closed = new Promise((resolve) => owner.streams[0]!.once('close', resolve))
  await owner.peer.close()
  t.not(await settledWithin(closed, BOUND_MS), 'hung', 'its socket closed by the time close() resolves')
  await t.rejects(c.get(owner.url, 'g', 'b'), PeerUnavailableError, 'a closed peer takes no more gets')
})
