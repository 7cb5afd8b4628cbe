// The live web view's server: one page (demo/web/, plain HTML and JS, no build step) and a stream
// of Server-Sent Events carrying the sampler's samples, on 127.0.0.1. A page that connects gets the
// ring and the samples so far first, so a late or reloaded page draws the whole run.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ring, arcShare } from '../dist/ring.js'

const PAGE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'web')
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/view.js': ['view.js', 'text/javascript; charset=utf-8'],
  '/charts.js': ['charts.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
}
/** Samples kept for a page that connects late: the last 10 minutes (the longest run). */
const KEEP_SAMPLES = 600
/** A comment line to every page this often, in ms, so a proxy or the browser does not think the stream died. */
const KEEPALIVE_MS = 15_000

/**
 * The ring as every node builds it from the same peer list (the library's default points per peer):
 * its arcs with node ids, and each node's share of the keyspace.
 * @param {{ id: string, url: string }[]} nodes
 */
export function ringOf(nodes) {
  const idOf = new Map(nodes.map((n) => [n.url, n.id]))
  const arcs = new Ring(nodes.map((n) => n.url)).arcs().map((a) => ({ from: a.from, to: a.to, node: idOf.get(a.peer) }))
  const shares = Object.fromEntries(nodes.map((n) => [n.id, 0]))
  for (const a of arcs) shares[a.node] += arcShare(a)
  return { arcs, shares }
}

export class WebView {
  /** @param {{ title: string, nodes: { id: string, url: string }[] }} options */
  constructor({ title, nodes }) {
    this.hello = { title, nodes: nodes.map((n) => ({ id: n.id, url: n.url })), ring: ringOf(nodes) }
    this.samples = []
    this.events = []
    /** @type {Set<http.ServerResponse>} */
    this.pages = new Set()
    this.server = http.createServer((req, res) => this.#serve(req, res))
    this.keepalive = setInterval(() => this.#send(': keepalive\n\n'), KEEPALIVE_MS)
    this.keepalive.unref()
  }

  /** Listens on `host:port` (port 0: any free one); resolves with the page's URL. */
  async listen(port = 0, host = '127.0.0.1') {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, resolve)
    })
    return `http://${host}:${this.server.address().port}/`
  }

  /** One more second of the run (demo/sampler.mjs), to every page. */
  publish(sample) {
    this.samples.push(sample)
    if (this.samples.length > KEEP_SAMPLES) this.samples.shift()
    this.#send(message('sample', sample))
  }

  /** Something happened (the chaos step), to every page. */
  event(elapsedMs, text) {
    const event = { atS: Math.round(elapsedMs / 100) / 10, text }
    this.events.push(event)
    this.#send(message('event', event))
  }

  /** The run is over: pages are told so, then the server closes. */
  async close() {
    clearInterval(this.keepalive)
    this.#send(message('end', {}))
    for (const res of this.pages) res.end()
    this.pages.clear()
    const closed = new Promise((resolve) => this.server.close(resolve))
    this.server.closeAllConnections()
    await closed
  }

  #serve(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET') return plain(res, 405, 'only GET')
    if (url.pathname === '/events') return this.#stream(res)
    const file = FILES[url.pathname]
    if (!file) return plain(res, 404, 'not found: the view is at /')
    fs.readFile(path.join(PAGE_DIR, file[0]), (err, body) => {
      if (err) return plain(res, 500, String(err.message))
      res.writeHead(200, { 'content-type': file[1], 'content-length': body.length, 'cache-control': 'no-store' })
      res.end(body)
    })
  }

  #stream(res) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(message('hello', { ...this.hello, samples: this.samples, events: this.events }))
    this.pages.add(res)
    res.on('close', () => this.pages.delete(res))
  }

  #send(text) {
    for (const res of this.pages) res.write(text)
  }
}

/** One Server-Sent Event. */
function message(type, data) {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
}

function plain(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
