// Profiles of a live process, the way Go's net/http/pprof gives them: `GET {basePath}debug/profile?seconds=N`
// answers with a V8 CPU profile (.cpuprofile: Chrome DevTools and speedscope open it) of the next N
// seconds, and `GET {basePath}debug/heap` with a heap snapshot (.heapsnapshot). Off unless the peer is
// made with `profiling: true`, and signed like every other peer request when auth is set (server.ts).
// One CPU profile at a time per process: the profiler is the isolate's, and two callers' samples
// would be mixed.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Session } from 'node:inspector/promises'
import { getHeapSnapshot } from 'node:v8'
import { fail } from './refusals.js'

/** Seconds a CPU profile runs when `seconds` is not given (pprof's default is 30; 10 s is enough to see a hot path). */
export const DEFAULT_PROFILE_SECONDS = 10
/** Longest CPU profile, in seconds: a forgotten request must not profile a production process for hours. */
export const MAX_PROFILE_SECONDS = 60
/** How often a running profile looks whether its requester hung up or the peer is closing, in ms. */
const CHECK_EVERY_MS = 100

let profiling = false

/** `GET debug/profile?seconds=N`: samples the CPU for N seconds and answers with the profile as JSON. */
export async function answerProfile(req: IncomingMessage, res: ServerResponse, closing: () => boolean): Promise<void> {
  const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '')
  const given = query.get('seconds')
  const seconds = given === null ? DEFAULT_PROFILE_SECONDS : /^\d{1,2}$/.test(given) ? Number(given) : Number.NaN
  if (!(seconds >= 1 && seconds <= MAX_PROFILE_SECONDS))
    return fail(res, 'bad-request', `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}, got ${JSON.stringify(given)}`)
  if (profiling) return fail(res, 'busy', 'a CPU profile of this process is being taken already: retry when it is done')
  profiling = true
  // The requester hanging up stops the profile: nobody would read it.
  let gone = false
  res.once('close', () => {
    gone = true
  })
  const session = new Session()
  try {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
    const whole = await until(seconds * 1000, () => gone || closing())
    const { profile } = await session.post('Profiler.stop')
    if (gone) return
    if (!whole) {
      res.setHeader('connection', 'close') // or server.close() would wait for this socket to idle out
      return fail(res, 'closing', 'the profile was cut short: the peer is shutting down')
    }
    const body = JSON.stringify(profile)
    res.statusCode = 200
    res.setHeader('content-type', 'application/json')
    res.setHeader('content-length', Buffer.byteLength(body))
    res.setHeader('content-disposition', `attachment; filename="peercache-${process.pid}-${Date.now()}.cpuprofile"`)
    res.end(body)
  } finally {
    session.disconnect()
    profiling = false
  }
}

/** `GET debug/heap`: a heap snapshot, streamed (it blocks this process while V8 writes it: seconds for a large heap). */
export function answerHeap(res: ServerResponse): void {
  res.statusCode = 200
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-disposition', `attachment; filename="peercache-${process.pid}-${Date.now()}.heapsnapshot"`)
  const snapshot = getHeapSnapshot()
  snapshot.on('error', () => res.destroy())
  snapshot.pipe(res)
}

/** Waits `ms`, or less if `stop()` turns true: true when the whole time passed. */
async function until(ms: number, stop: () => boolean): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (stop()) return false
    await new Promise((resolve) => setTimeout(resolve, Math.min(CHECK_EVERY_MS, end - Date.now())))
  }
  return true
}
