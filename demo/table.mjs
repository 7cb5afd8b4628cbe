// Plain-text tables for the live view and the summary: columns padded to their widest cell,
// the first `left` columns (names) to the left, the others (numbers) to the right.

/**
 * Lines of a table of rows (arrays of cells) under `headers`; a cell is a string, a number or null ("-").
 * `groups` (one name or undefined per column) adds a line above the headers naming each run of
 * columns that share a group, as in "last second ------  since start ----".
 */
export function table(headers, rows, left = 2, groups = undefined) {
  const cells = [headers, ...rows.map((r) => r.map(cellText))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  const lines = cells.map((r) =>
    r
      .map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd(),
  )
  return groups ? [groupLine(groups, widths), ...lines] : lines
}

/** The line over the headers: each group's name, then dashes to the end of its last column. */
function groupLine(groups, widths) {
  let line = ''
  for (let i = 0; i < groups.length; ) {
    let j = i
    while (j + 1 < groups.length && groups[j + 1] === groups[i]) j++
    const span = widths.slice(i, j + 1).reduce((a, w) => a + w, 0) + 2 * (j - i)
    const name = groups[i]
    line += (i > 0 ? '  ' : '') + (name ? `${name} ${'-'.repeat(Math.max(0, span - name.length - 1))}`.slice(0, span) : ' '.repeat(span))
    i = j + 1
  }
  return line.trimEnd()
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
