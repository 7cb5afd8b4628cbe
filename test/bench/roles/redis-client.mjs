// Role of the Redis contestant's client process: ioredis against the bench's redis-server,
// with default settings or with enableAutoPipelining.
import Redis from 'ioredis'
import { closedLoop } from '../load-loop.mjs'

let redis

export async function connect({ port, autoPipelining }) {
  redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableAutoPipelining: autoPipelining, maxRetriesPerRequest: 1 })
  await redis.connect()
}

/** SETs every key to a value of `valueBytes`, in pipelines of 1000. */
export async function fill({ keys, valueBytes }) {
  for (let i = 0; i < keys.length; i += 1000) {
    const pipeline = redis.pipeline()
    for (const key of keys.slice(i, i + 1000)) pipeline.set(key, Buffer.alloc(valueBytes, key.charCodeAt(key.length - 1)))
    await pipeline.exec()
  }
}

/** A closed-loop run of GETs (see load-loop.mjs); checks each value's size. */
export function load({ valueBytes, ...loop }) {
  return closedLoop({
    ...loop,
    op: async (key) => {
      const value = await redis.getBuffer(key)
      if (value?.length !== valueBytes) throw new Error(`${key}: got ${value?.length} bytes, expected ${valueBytes}`)
    },
  })
}

export async function close() {
  await redis?.quit().catch(() => redis.disconnect())
}
