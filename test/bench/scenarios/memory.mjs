// Memory: RSS and heap of a fresh process whose group is full at maxBytes with 1 KiB values, next
// to the same number of Buffers in a plain Map (what any Node cache of Buffers pays at the least);
// then a group full of 100-byte values, where the cost per entry beyond its value is what counts.
import { startRole } from '../procs.mjs'
import { formatTable, mib } from '../table.mjs'

const MAX_BYTES = 256 * 1024 * 1024
const VALUE_BYTES = 1024
/** Small values: the per-entry overhead dominates (issue 13's target: at most 300 bytes per entry beyond the value). */
const SMALL = { maxBytes: 128 * 1024 * 1024, valueBytes: 100 }

export async function run({ log }) {
  log(`memory: filling a group of ${mib(MAX_BYTES)} with ${VALUE_BYTES} B values, then as much again`)
  const { full, churned } = await inFreshProcess('memory-group', 'group', { maxBytes: MAX_BYTES, valueBytes: VALUE_BYTES })
  log(`memory: ${full.items} Buffers in a plain Map`)
  const plain = await inFreshProcess('memory-map', 'plainMap', { items: full.items, valueBytes: VALUE_BYTES })
  log(`memory: filling a group of ${mib(SMALL.maxBytes)} with ${SMALL.valueBytes} B values, then as much again`)
  const small = await inFreshProcess('memory-group-small', 'group', SMALL)
  const json = { ...full, afterChurn: churned, plainMap: plain, small: { ...small.full, afterChurn: small.churned } }
  return { text: table(full, churned, plain) + smallTable(small.full, small.churned), json }
}

async function inFreshProcess(name, method, args) {
  const proc = await startRole('memory', { name, gc: true })
  try {
    return await proc.call(method, [args], 180_000)
  } finally {
    await proc.stop()
  }
}

function table(full, churned, plain) {
  const row = (label, m) => [
    label,
    m.items,
    mib(m.rssGrowthBytes),
    mib(m.heapTotalGrowthBytes),
    mib(m.heapUsedGrowthBytes),
    mib(m.externalGrowthBytes),
    m.overheadPerEntryBytes,
    `${(m.rssGrowthBytes / full.maxBytes).toFixed(2)}x`,
  ]
  const rows = [row('group, just full', full), row('group, after as many loads again', churned), row('plain Map, same Buffers', plain)]
  return (
    formatTable(
      `Memory: a group full at maxBytes = ${mib(full.maxBytes)} with ${full.valueBytes} B values (fresh process, after gc)`,
      [
        'holder',
        'entries',
        'RSS growth',
        'heap total growth',
        'heap used growth',
        'external growth',
        'overhead B/entry',
        'RSS growth / maxBytes',
      ],
      rows,
    ) +
    `\nthe budget counts ${full.budgetBytes.toLocaleString('en-US')} bytes for these entries (value + key + the per-entry overhead lib/cache.ts charges)\n`
  )
}

function smallTable(full, churned) {
  const row = (label, m) => [
    label,
    m.items,
    mib(m.rssGrowthBytes),
    mib(m.heapUsedGrowthBytes),
    Math.round(m.overheadPerEntryBytes),
    `${m.ratio.toFixed(2)}x`,
  ]
  return `\n${formatTable(
    `Memory: a group full at maxBytes = ${mib(full.maxBytes)} with ${full.valueBytes} B values (fresh process, after gc)`,
    ['holder', 'entries', 'RSS growth', 'heap used growth', 'RSS B/entry beyond the value', 'RSS growth / maxBytes'],
    [row('group, just full', full), row('group, after as many loads again', churned)],
  )}\nthe budget counts ${full.budgetBytes.toLocaleString('en-US')} bytes for these entries\n`
}
