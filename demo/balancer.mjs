// A load balancer in front of the app nodes, as Nginx or HAProxy would be: round robin; a request
// whose node is down (refused, reset, timed out) is retried once on another node, and that node
// is passed over for a moment (Nginx's max_fails=1 fail_timeout). HTTP answers are never retried:
// a 500 is the app's answer.
import { Pool } from 'undici'

export class Balancer {
  /**
   * @param {{ id: string, url: string }[]} targets the app nodes
   * @param {{ timeoutMs?: number, failTimeoutMs?: number, connections?: number }} [options]
   *   timeoutMs: longest wait for one node's answer (default 5000);
   *   failTimeoutMs: how long a node that failed is passed over (default 1000);
   *   connections: keep-alive connections per node (default 32)
   */
  constructor(targets, options = {}) {
    if (targets.length === 0) throw new RangeError('the balancer needs at least one node')
    this.timeoutMs = options.timeoutMs ?? 5000
    this.failTimeoutMs = options.failTimeoutMs ?? 1000
    this.targets = targets.map((t) => ({
      ...t,
      downUntil: 0,
      pool: new Pool(t.url, {
        connections: options.connections ?? 32,
        connectTimeout: this.timeoutMs,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      }),
    }))
    this.next = 0
    /** Requests sent again to another node because the first one was down. */
    this.retries = 0
  }

  /**
   * GETs `path` from one node, or from a second one if the first is down.
   * Resolves with { node, status, body }; rejects when both attempts got no answer.
   */
  get(path) {
    return this.request('GET', path)
  }

  /**
   * Sends `method path` (with `body`, for a PUT) to one node, or to a second one if the first is
   * down; the demo's writes (PUT and DELETE of a user) are idempotent, so that retry is safe too.
   */
  async request(method, path, body) {
    const first = this.#pick(undefined)
    try {
      return await this.#send(first, method, path, body)
    } catch (err) {
      first.downUntil = Date.now() + this.failTimeoutMs
      if (this.targets.length === 1) throw err
      this.retries++
      return await this.#send(this.#pick(first), method, path, body)
    }
  }

  async close() {
    await Promise.allSettled(this.targets.map((t) => t.pool.destroy()))
  }

  /** The next node in turn that is not `except` and not passed over; any other node if all are. */
  #pick(except) {
    const now = Date.now()
    const n = this.targets.length
    let fallback
    for (let i = 0; i < n; i++) {
      const t = this.targets[(this.next + i) % n]
      if (t === except) continue
      if (t.downUntil <= now) {
        this.next = (this.next + i + 1) % n
        return t
      }
      fallback ??= t
    }
    this.next = (this.next + 1) % n
    return fallback ?? except
  }

  async #send(target, method, path, body) {
    const res = await target.pool.request({ path, method, body })
    return { node: target.id, status: res.statusCode, body: await res.body.text() }
  }
}
