// Versions from the wire are checked, not trusted. A version is the writer's clock in µs since the
// epoch (store.ts), and every version a process sees pushes its own clock forward: one huge version
// (1e308) would freeze it, and every write after it would lose to the poisoned one. So a version
// must be a plain safe integer no further ahead of this process's clock than the allowed skew.

/** µs per ms: versions count µs. */
const US_PER_MS = 1000
const DIGITS = /^\d{1,16}$/

/** Whether `version` may be believed: a safe integer ≥ 0, at most `maxAheadMs` ahead of `nowMs`. */
export function plausibleVersion(version: number, maxAheadMs: number, nowMs = Date.now()): boolean {
  return Number.isSafeInteger(version) && version >= 0 && version <= (nowMs + maxAheadMs) * US_PER_MS
}

/**
 * A version header: undefined when absent, the version when it is decimal digits and plausible,
 * null otherwise (the server answers 400 and changes nothing).
 */
export function versionHeader(value: string | string[] | undefined, maxAheadMs: number, nowMs = Date.now()): number | undefined | null {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !DIGITS.test(value)) return null
  const version = Number(value)
  return plausibleVersion(version, maxAheadMs, nowMs) ? version : null
}
