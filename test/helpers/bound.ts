// "It did not hang" without timing anything: a promise either settles within a generous bound or
// is reported as hung, so the test fails with a message instead of stalling until tap's timeout.

/** Resolves with `p`'s value, or with 'hung' if it has not settled within `ms`. Rejects if `p` does. */
export async function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)))
  try {
    return await Promise.race([p, hang])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Waits until the async `check()` holds (asked every 20 ms, one at a time); rejects after `limitMs`
 * (generous: the point is "it happens", not how fast). For state read from member processes.
 */
export async function until(what: string, check: () => Promise<boolean>, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
