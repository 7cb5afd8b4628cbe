// Skewed key choice for the load generator: Zipf over ids 1..n (id k drawn with weight 1/k^s),
// from a seeded generator so two runs with the same seed ask for the same keys in the same order.

/** mulberry32: a tiny, fast, seedable PRNG giving floats in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A function that draws an id from 1..n, Zipf-distributed with exponent s (> 0), using `random`. */
export function zipfSampler(n, s, random) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`key space must be a positive integer, got ${n}`)
  if (!(s > 0)) throw new RangeError(`Zipf exponent must be > 0, got ${s}`)
  // Cumulative weights: one binary search per draw.
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s
  return () => {
    const u = random() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    return lo + 1
  }
}
