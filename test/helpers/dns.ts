// A small UDP DNS server a test controls, for discovery: it answers A and AAAA queries for one name
// from a record list the test changes, and can fail on purpose (SERVFAIL, NXDOMAIN, dropped or held
// queries). Used by test/discovery.test.ts on loopback and test/partition.test.ts on a bridge.
import dgram from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import net from 'node:net'

/** The name a test DNS server answers for, unless told another. */
export const DNS_NAME = 'peercache.test.internal'

export type DnsMode = 'answer' | 'servfail' | 'nxdomain' | 'drop' | 'hold'

/**
 * A DNS server for one name (`name`, default DNS_NAME) on UDP `host` (default 127.0.0.1), a free
 * port. `records` mixes IPv4 (A) and IPv6 (AAAA), and can be changed through `state`; `mode`
 * chooses how it answers. Close it with `close()`.
 */
export async function startDnsServer(records: string[], options: { host?: string; name?: string } = {}) {
  const { host = '127.0.0.1', name = DNS_NAME } = options
  const socket = dgram.createSocket('udp4')
  const state = { records, mode: 'answer' as DnsMode, queries: { A: 0, AAAA: 0 }, held: [] as (() => void)[] }
  socket.on('message', (msg, from) => {
    const q = parseQuestion(msg)
    if (q === undefined) return
    if (q.type === 1) state.queries.A++
    if (q.type === 28) state.queries.AAAA++
    const send = (reply: Buffer) => socket.send(reply, from.port, from.address)
    if (state.mode === 'drop') return
    if (state.mode === 'servfail') return send(response(q, 2, []))
    if (q.name !== name || state.mode === 'nxdomain') return send(response(q, 3, []))
    const want = q.type === 1 ? net.isIPv4 : q.type === 28 ? net.isIPv6 : () => false
    const reply = response(
      q,
      0,
      state.records.filter((r) => want(r)).map((r) => answer(q.type, ipBytes(r))),
    )
    if (state.mode === 'hold') state.held.push(() => send(reply))
    else send(reply)
  })
  await new Promise<void>((resolve) => socket.bind(0, host, resolve))
  const server = `${host}:${socket.address().port}`
  return {
    state,
    /** A Resolver that asks only this server; one short try, so a dropped query fails fast. */
    resolver() {
      const r = new Resolver({ timeout: 300, tries: 1 })
      r.setServers([server])
      return r
    },
    server,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}

interface Question {
  id: number
  flags: number
  name: string
  type: number
  question: Buffer
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined
  const labels: string[] = []
  let off = 12
  for (let len = msg[off]; len !== 0; len = msg[off]) {
    if (len === undefined || len > 63) return undefined
    labels.push(msg.toString('latin1', off + 1, off + 1 + len))
    off += 1 + len
  }
  off += 1 // the root label
  if (off + 4 > msg.length) return undefined
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(off),
    question: msg.subarray(12, off + 4),
  }
}

/** Header (QR, AA, the query's opcode and RD, RA, rcode), the question echoed, then the answers. */
function response(q: Question, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(q.id, 0)
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(answers.length, 6)
  return Buffer.concat([header, q.question, ...answers])
}

/** A resource record naming the question (pointer to offset 12), class IN, TTL 0 so no resolver caches it. */
function answer(type: number, rdata: Buffer): Buffer {
  const rr = Buffer.alloc(12)
  rr.writeUInt16BE(0xc00c, 0)
  rr.writeUInt16BE(type, 2)
  rr.writeUInt16BE(1, 4)
  rr.writeUInt32BE(0, 6)
  rr.writeUInt16BE(rdata.length, 10)
  return Buffer.concat([rr, rdata])
}

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number))
  const [head = '', tail] = ip.split('::')
  const groups = (s: string | undefined) => (s ? s.split(':') : [])
  const missing = 8 - groups(head).length - groups(tail).length
  const all = [...groups(head), ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...groups(tail)]
  const bytes = Buffer.alloc(16)
  for (const [i, g] of all.entries()) bytes.writeUInt16BE(parseInt(g, 16), i * 2)
  return bytes
}
