// Plain-text tables for the live view and the summary: columns padded to their widest cell,
// the first `left` columns (names) to the left, the others (numbers) to the right.

/** Lines of a table of rows (arrays of cells) under `headers`; a cell is a string, a number or null ("-"). */
export function table(headers, rows, left = 2) {
  const cells = [headers, ...rows.map((r) => r.map(cellText))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) =>
    r
      .map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd(),
  )
}

function cellText(c) {
  if (c === null || c === undefined) return '-'
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : c.toFixed(1)
  return c
}

/** 0.734 → "73%"; null when there is nothing to divide. */
export function percent(part, whole) {
  return whole > 0 ? `${Math.round((100 * part) / whole)}%` : null
}

/** Requests per origin load, one decimal; null before the first load. */
export function dedupFactor(requests, originLoads) {
  return originLoads > 0 ? Math.round((10 * requests) / originLoads) / 10 : null
}
