// Summary of a .cpuprofile (node --cpu-prof): the functions with the most self time, and self
// time by package or file. Also a command: node test/bench/profile-top.mjs file.cpuprofile [top]
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { pathToFileURL } from 'node:url'

/** { file, busyMs, idlePct, functions: [{ name, where, pct }], places: [{ where, pct }] }; pct is of busy (non-idle) time. */
export function summarizeProfile(file, top = 15) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const hits = new Map()
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  const byFunction = new Map()
  const byPlace = new Map()
  let idle = 0
  let busy = 0
  for (const [id, count] of hits) {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame
    if (functionName === '(idle)') {
      idle += count
      continue
    }
    busy += count
    const where = placeOf(url, functionName)
    const fn = `${functionName || '(anonymous)'}\t${where}${url ? `:${lineNumber + 1}` : ''}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + count)
    byPlace.set(where, (byPlace.get(where) ?? 0) + count)
  }
  const intervalMs = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length)
  const ranked = (map) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
  return {
    file: basename(file),
    busyMs: Math.round(busy * intervalMs),
    idlePct: (100 * idle) / Math.max(1, idle + busy),
    functions: ranked(byFunction).map(([key, count]) => {
      const [name, where] = key.split('\t')
      return { name, where, pct: (100 * count) / busy }
    }),
    places: ranked(byPlace).map(([where, count]) => ({ where, pct: (100 * count) / busy })),
  }
}

/** A package name, a node: module, a project file, or the VM's own entries ((garbage collector), (program)). */
function placeOf(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : 'native'
  if (url.startsWith('node:'))
    return url
      .replace(/^node:(internal\/)?(deps\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/')
      .replace(/\.js$/, '')
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)
  if (pkg) return pkg[1]
  const own = url.match(/\/(dist|test\/bench)\/(.+)$/)
  return own ? `${own[1]}/${own[2]}` : url
}

export function formatProfile(s) {
  const lines = [`#### ${s.file}: ${s.busyMs} ms busy, ${s.idlePct.toFixed(0)} % idle`, '', 'self time, % of busy:']
  for (const f of s.functions) lines.push(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.name}  (${f.where})`)
  lines.push('', 'self time by package or file, % of busy:')
  for (const p of s.places) lines.push(`  ${p.pct.toFixed(1).padStart(5)} %  ${p.where}`)
  return `${lines.join('\n')}\n`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.env.TAP_CHILD_ID !== undefined) {
    console.log('1..0 # benchmarks run with `npm run bench`, not as tests')
  } else {
    const top = Number(process.argv.at(-1)) || 15
    for (const file of process.argv.slice(2).filter((a) => a.endsWith('.cpuprofile')))
      console.log(formatProfile(summarizeProfile(file, top)))
  }
}
