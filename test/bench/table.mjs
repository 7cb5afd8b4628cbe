// Plain-text tables for the terminal (also valid Markdown, so a run can be pasted into the README).

/** Prints `rows` (arrays of cells) under `headers` as a Markdown table, with a title line. */
export function formatTable(title, headers, rows) {
  const cells = rows.map((row) => row.map(cell))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)))
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [`### ${title}`, '', line(headers), rule, ...cells.map(line), ''].join('\n')
}

function cell(v) {
  if (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v))) return '—'
  if (typeof v === 'number') return formatNumber(v)
  return String(v)
}

/** 123,456 for large numbers, 3 significant digits for small ones. */
export function formatNumber(n) {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US')
  if (abs >= 100 || Number.isInteger(n)) return String(Math.round(n))
  return n.toPrecision(3)
}

/** "1.23x", or a dash when there is no anchor to compare with. */
export function ratio(value, anchor) {
  if (!(anchor > 0) || !Number.isFinite(value)) return undefined
  return `${(value / anchor).toFixed(2)}x`
}

export function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`
}
