// The simulated slow store behind every app node: a user record per id, the same in every process,
// after 20-50 ms. It counts its loads, so the demo's origin numbers are its own and not peercache's.

/** Fastest origin answer in ms. */
export const ORIGIN_MIN_MS = 20
/** Slowest origin answer in ms. */
export const ORIGIN_MAX_MS = 50

const CITIES = ['Lisbon', 'Osaka', 'Lagos', 'Lima', 'Oslo', 'Pune', 'Quito', 'Riga']

/** FNV-1a, 32 bits: a cheap stable hash so every process derives the same record and delay. */
function fnv1a(text) {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** The record of user `id` as JSON text: what the origin returns and what a correct answer is. */
export function userRecord(id) {
  const h = fnv1a(`user:${id}`)
  return JSON.stringify({
    id: Number(id),
    name: `User ${id}`,
    email: `user${id}@example.com`,
    city: CITIES[h % CITIES.length],
    karma: h % 10_000,
  })
}

/** How long the origin takes for `id`, in ms: fixed per id, spread over 20-50 ms. */
export function originDelayMs(id) {
  return ORIGIN_MIN_MS + (fnv1a(`delay:${id}`) % (ORIGIN_MAX_MS - ORIGIN_MIN_MS + 1))
}

/** One process's handle on the store. `loads` counts every call, finished or not. */
export function createOrigin() {
  const origin = {
    loads: 0,
    /** The record of `id` after its delay; rejects with the signal's reason if aborted first. */
    load(id, signal) {
      origin.loads++
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer)
          reject(signal.reason)
        }
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort)
          resolve(userRecord(id))
        }, originDelayMs(id))
        if (signal?.aborted) return onAbort()
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
  }
  return origin
}
