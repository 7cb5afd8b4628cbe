// The defaults live in one object per options type (lib/defaults.ts); the README's "Defaults" table
// shows every one of them with the same value, so the code, the TSDoc and the README cannot drift.
import { readFileSync } from 'node:fs'
import t from 'tap'
import * as api from '../lib/index.js'

/** Every defaults object the package exports: one added later is checked without being listed here. */
const OBJECTS = Object.fromEntries(Object.entries(api).filter(([name]) => name.endsWith('_DEFAULTS'))) as Record<string, object>
/** Options nested under a PeerOptions field are named with it in the table (`backup.intervalMs`, `auth.maxSkewMs`). */
const PREFIX: Record<string, string> = {
  BACKUP_DEFAULTS: 'backup.',
  HINTS_DEFAULTS: 'hints.',
  AUTH_DEFAULTS: 'auth.',
  UPDATE_DEFAULTS: 'update.',
  LOCK_DEFAULTS: 'locks.',
}

/** The README's Defaults table as option → the literal in its default column. */
function readmeDefaults(): Map<string, string> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Defaults'), readme.indexOf('\n## ', readme.indexOf('## Defaults') + 1))
  const rows = new Map<string, string>()
  for (const line of section.split('\n')) {
    const m = /^\| `([A-Za-z.]+)` \| `([^`]+)` \|/.exec(line)
    if (m) rows.set(m[1]!, m[2]!)
  }
  return rows
}

/** A default as the README writes it: a JS literal with single-quoted strings. */
function literal(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`
  return String(value)
}

t.test('the README shows every default with the value the code uses', async (t) => {
  const rows = readmeDefaults()
  t.ok(rows.size > 0, 'the table was found')
  for (const [object, defaults] of Object.entries(OBJECTS)) {
    for (const [option, value] of Object.entries(defaults)) {
      t.equal(rows.get(`${PREFIX[object] ?? ''}${option}`), literal(value), `${object}.${option}`)
    }
  }
})

t.test('every row of the table is a default the code has', async (t) => {
  const known = new Set(Object.entries(OBJECTS).flatMap(([object, d]) => Object.keys(d).map((o) => `${PREFIX[object] ?? ''}${o}`)))
  for (const option of readmeDefaults().keys()) t.ok(known.has(option), `${option} is in a defaults object`)
})

t.test('the defaults objects cannot be changed at run time by accident', async (t) => {
  for (const [object, defaults] of Object.entries(OBJECTS)) t.ok(Object.isFrozen(defaults), `${object} is frozen`)
})
