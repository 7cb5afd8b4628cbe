// A load's deadline (GroupOptions.loadTimeoutMs): past it the load's waiters get the error the caller
// makes (a LoadTimeoutError) while the loader may go on. A flight that ends otherwise (nobody waits
// any more, close) takes its timer with it: nothing stays scheduled.

/** `loading`, or a rejection with `timedOut()` once `ms` have passed (0: no deadline) or with the signal's reason when it aborts. */
export function withinDeadline<V>(loading: Promise<V>, ms: number, signal: AbortSignal, timedOut: () => Error): Promise<V> {
  if (ms === 0) return loading
  if (signal.aborted) {
    // Ended while it waited for a slot: no timer. The loader, told by the same signal, may reject later.
    loading.catch(() => {})
    return Promise.reject(signal.reason)
  }
  let timer: NodeJS.Timeout | undefined
  let stop = () => {}
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms)
    stop = () => reject(signal.reason)
    signal.addEventListener('abort', stop, { once: true })
  })
  return Promise.race([loading, timeout]).finally(() => {
    clearTimeout(timer)
    signal.removeEventListener('abort', stop)
  })
}
