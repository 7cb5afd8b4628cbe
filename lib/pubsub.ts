// Publish/subscribe between the members: peer.publish(channel, message) sends the message to every
// member (this one included) over the peer transport, signed like all peer traffic: POST
// {basePath}publish, the channel in x-peercache-channel, the message as the body (bytes, or JSON);
// each member hands it to its subscribers of that channel through a bounded queue per subscriber
// (events.ts). At most once: nothing is stored, retried or replayed (README, "Publish/subscribe").
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ClosedError, InvalidOptionError } from './errors.js'
import { BoundedQueue } from './events.js'
import type { Membership } from './membership.js'
import { HEADER } from './protocol.js'
import { bodyOrRefuse, fail } from './refusals.js'

/** Longest channel name, in bytes of UTF-8 (it travels in a header). */
export const MAX_CHANNEL_BYTES = 256

/** Who sent a message, on which channel. */
export interface MessageInfo {
  channel: string
  /** The URL of the member that published it. */
  origin: string
}

/** Gets each message: a Buffer when bytes were published, else the parsed JSON value. */
export type MessageListener = (message: unknown, info: MessageInfo) => unknown

/** Members that took the message (this one included), and those that could not be reached. */
export interface PublishResult {
  delivered: string[]
  unreachable: string[]
}

/** How a message goes to another member (PeerClient.publish). */
export interface PublishTransport {
  publish(peer: string, channel: string, body: Uint8Array, json: boolean): Promise<void>
}

interface Received {
  message: unknown
  info: MessageInfo
}

export interface PubSubOptions {
  membership: Membership
  transport: PublishTransport
  /** Largest message body, in bytes. */
  maxMessageBytes: number
  /** Messages that may wait for each subscriber. */
  maxQueuedMessages: number
}

export class PubSub {
  readonly #o: PubSubOptions
  readonly #channels = new Map<string, Set<BoundedQueue<Received>>>()
  /** Messages dropped because a subscriber's queue was full. */
  dropped = 0

  constructor(options: PubSubOptions) {
    this.#o = options
  }

  get maxMessageBytes(): number {
    return this.#o.maxMessageBytes
  }

  /** Adds a subscriber of `channel`; returns the function that removes it. */
  subscribe(channel: string, listener: MessageListener): () => void {
    checkChannel(channel)
    if (typeof listener !== 'function') throw new InvalidOptionError('listener', 'must be a function')
    let warned = false
    const queue = new BoundedQueue<Received>(
      (r) => listener(r.message, r.info),
      this.#o.maxQueuedMessages,
      () => this.#overflowed(channel),
      (err) => {
        if (warned) return
        warned = true
        process.emitWarning(`peercache: a subscriber of channel ${JSON.stringify(channel)} threw (said once): ${String(err)}`, {
          code: 'PEERCACHE_SUBSCRIBER_FAILED',
        })
      },
    )
    let subscribers = this.#channels.get(channel)
    if (subscribers === undefined) this.#channels.set(channel, (subscribers = new Set()))
    subscribers.add(queue)
    return () => {
      queue.close()
      subscribers.delete(queue)
      if (subscribers.size === 0 && this.#channels.get(channel) === subscribers) this.#channels.delete(channel)
    }
  }

  /**
   * Sends `message` (a Uint8Array as bytes, anything else as JSON) to every member in parallel,
   * bounded by fanOut; members known to be down are unreachable at once.
   */
  async publish(channel: string, message: unknown): Promise<PublishResult> {
    checkChannel(channel)
    const { membership, transport } = this.#o
    if (membership.closed) throw new ClosedError()
    const json = !(message instanceof Uint8Array)
    const body = json ? jsonBytes(message) : message
    if (body.byteLength > this.#o.maxMessageBytes)
      throw new InvalidOptionError('message', `${body.byteLength} bytes, more than maxMessageBytes (${this.#o.maxMessageBytes})`)
    const result: PublishResult = { delivered: [], unreachable: [] }
    const send = async (peer: string) => {
      try {
        if (peer === membership.self) this.deliver(channel, Buffer.from(body), json, peer)
        else await transport.publish(peer, channel, body, json)
        result.delivered.push(peer)
      } catch (err) {
        membership.peerFailed(peer, err)
        result.unreachable.push(peer)
      }
    }
    const members = membership.members()
    result.unreachable.push(...members.filter((p) => !membership.isUp(p)))
    await Promise.all(members.filter((p) => membership.isUp(p)).map((p) => membership.limit(() => send(p))))
    return result
  }

  /** A message for this process's subscribers (from a peer, or published here). Throws SyntaxError for bad JSON. */
  deliver(channel: string, body: Buffer, json: boolean, origin: string): void {
    const subscribers = this.#channels.get(channel)
    if (subscribers === undefined) return
    const message: unknown = json ? JSON.parse(body.toString('utf8')) : body
    for (const queue of subscribers) queue.push({ message, info: { channel, origin } })
  }

  /** Stops every delivery (the peer closed). */
  close(): void {
    for (const subscribers of this.#channels.values()) for (const queue of subscribers) queue.close()
    this.#channels.clear()
  }

  #overflowed(channel: string): void {
    if (this.dropped++ > 0) return
    process.emitWarning(
      `peercache: a subscriber of channel ${JSON.stringify(channel)} is slower than the messages: those past maxQueuedMessages (${this.#o.maxQueuedMessages}) are dropped (peer.messagesDropped counts them; said once)`,
      { code: 'PEERCACHE_MESSAGES_DROPPED' },
    )
  }
}

/** POST {basePath}publish: a message from a peer, for this process's subscribers. */
export async function answerPublish(pubsub: PubSub, req: IncomingMessage, res: ServerResponse, digest: string | undefined): Promise<void> {
  const header = req.headers[HEADER.channel]
  const from = req.headers[HEADER.from]
  let channel: string
  try {
    if (typeof header !== 'string' || typeof from !== 'string') throw new Error(`a publish needs ${HEADER.channel} and ${HEADER.from}`)
    channel = decodeURIComponent(header)
    checkChannel(channel)
  } catch (err) {
    res.setHeader('connection', 'close') // the body is not read
    return fail(res, 'bad-request', (err as Error).message)
  }
  const body = await bodyOrRefuse(req, res, { maxBytes: pubsub.maxMessageBytes, digest })
  if (body === undefined) return
  try {
    pubsub.deliver(channel, body, req.headers['content-type'] === 'application/json', from)
  } catch {
    return fail(res, 'bad-request', 'the message is not JSON')
  }
  res.statusCode = 204
  res.end()
}

function checkChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || channel.length === 0 || Buffer.byteLength(channel) > MAX_CHANNEL_BYTES)
    throw new InvalidOptionError(
      'channel',
      `must be a string of 1 to ${MAX_CHANNEL_BYTES} bytes, got ${JSON.stringify(String(channel)).slice(0, 100)}`,
    )
  if (!(channel as unknown as { isWellFormed(): boolean }).isWellFormed())
    throw new InvalidOptionError('channel', 'must be well-formed Unicode (no lone surrogate)')
}

function jsonBytes(message: unknown): Buffer {
  let text: string | undefined
  try {
    text = JSON.stringify(message)
  } catch (err) {
    throw new InvalidOptionError('message', `cannot be sent as JSON: ${(err as Error).message}`)
  }
  if (text === undefined) throw new InvalidOptionError('message', `cannot be sent as JSON: ${typeof message}`)
  return Buffer.from(text)
}
