// Small numeric helpers shared by the scenarios.

/** The q-quantile (0..1) of an ascending-sorted array, nearest-rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]
}

export function median(values) {
  return quantile(Float64Array.from(values).sort(), 0.5)
}

export function mean(values) {
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Population standard deviation. */
export function stddev(values) {
  const m = mean(values)
  let sum = 0
  for (const v of values) sum += (v - m) ** 2
  return Math.sqrt(sum / values.length)
}
