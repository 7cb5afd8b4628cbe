// Takes a CPU profile or a heap snapshot of a running peer through its debug endpoints, signing the
// request with PEERCACHE_SECRET when it is set (the demo's nodes share it). README, "Profiling".
//   node demo/profile.mjs http://127.0.0.1:PORT [seconds | heap]
import { writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { signRequest } from '../dist/index.js'

const [base, what = '10'] = process.argv.slice(2)
if (!base || !(what === 'heap' || /^\d+$/.test(what))) {
  console.error('usage: node demo/profile.mjs http://HOST:PORT [seconds (1-60, default 10) | heap]')
  process.exit(2)
}
const url = new URL(what === 'heap' ? '/_peercache/debug/heap' : `/_peercache/debug/profile?seconds=${what}`, base)
const secret = process.env.PEERCACHE_SECRET
const headers = secret ? signRequest({ secret }, 'GET', url) : {}
// A profile takes its seconds, a heap snapshot of a large process a while: no body timeout.
const res = await request(url, { headers, bodyTimeout: 0, headersTimeout: 120_000 })
if (res.statusCode !== 200) {
  console.error(`${url}: ${res.statusCode} ${await res.body.text()}`)
  process.exit(1)
}
const file = /filename="([^"]+)"/.exec(String(res.headers['content-disposition']))?.[1] ?? 'peer.cpuprofile'
await writeFile(file, Buffer.from(await res.body.arrayBuffer()))
console.log(`${file}: open it in Chrome DevTools (Performance, or Memory for a heap snapshot) or at https://www.speedscope.app`)
