// The benchmark suite of issue 6: `npm run bench -- [--quick] [--json] [--only name] [--install] [--cpu-prof]`.
// Runs the scenarios one after another (each in its own child processes), prints a table per
// scenario and the goals, and with --json ends stdout with one JSON object of every result.
if (process.env.TAP_CHILD_ID !== undefined) {
  // tap's default globs include everything under test/: the benchmark is not a test.
  console.log('1..0 # benchmarks run with `npm run bench`, not as tests')
  process.exit(0)
}

const { readdirSync } = await import('node:fs')
const { join } = await import('node:path')
const { parseArgs, USAGE, UsageError } = await import('./args.mjs')
const { checkGoals } = await import('./goals.mjs')
const { describeMachine, machineLine } = await import('./machine.mjs')
const { childSettings, killChildren, RESULTS_DIR } = await import('./procs.mjs')
const { formatProfile, summarizeProfile } = await import('./profile-top.mjs')
const { formatTable } = await import('./table.mjs')

const FILES = {
  localHit: 'local-hit',
  remoteHit: 'remote-hit',
  stampede: 'stampede',
  zipf: 'zipf',
  memory: 'memory',
  ring: 'ring',
  coldMiss: 'cold-miss',
}

let options
try {
  options = parseArgs(process.argv.slice(2))
} catch (err) {
  if (!(err instanceof UsageError)) throw err
  if (err.message) console.error(err.message)
  console.error(USAGE)
  process.exit(err.message ? 2 : 0)
}

process.on('exit', killChildren)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))
childSettings.cpuProf = options.cpuProf

const log = (message) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)
const machine = describeMachine()
console.log(`# peercache benchmark (${options.quick ? 'quick' : 'full'}): ${options.only.join(', ')}\n\nmachine: ${machineLine(machine)}\n`)

const results = {}
let failed = false
const started = Date.now()
for (const name of options.only) {
  const t0 = Date.now()
  try {
    const scenario = await import(`./scenarios/${FILES[name]}.mjs`)
    const { text, json } = await scenario.run({ ...options, log })
    console.log(text)
    results[name] = json
    log(`${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  } catch (err) {
    failed = true
    results[name] = { error: err?.message ?? String(err) }
    console.error(`${name} failed: ${err?.stack ?? err}${err?.childStack ? `\nin the child: ${err.childStack}` : ''}`)
    console.log(`### ${name}\n\nFAILED: ${err?.message ?? err}\n`)
  }
}
machine.loadAverageAtEnd = (await import('node:os')).loadavg().map((l) => Number(l.toFixed(2)))
machine.seconds = Math.round((Date.now() - started) / 1000)

const goals = checkGoals(results)
if (goals.length > 0) {
  const verdict = (met) => (met === undefined ? 'not measured' : met ? 'met' : 'NOT met')
  console.log(
    formatTable(
      'Goals (issues 6 and 13)',
      ['goal', 'target', 'measured', 'verdict'],
      goals.map((g) => [g.goal, g.target, g.measured, verdict(g.met)]),
    ),
  )
}
console.log(
  `ran in ${machine.seconds} s; load average ${machine.loadAverage.join(' ')} at the start, ${machine.loadAverageAtEnd.join(' ')} at the end (the machine is shared: numbers are noisy)\n`,
)

if (options.cpuProf) printProfiles()
if (options.json) {
  const empty = { localHit: null, remoteHit: null, stampede: null, zipf: null, memory: null, ring: null }
  console.log(JSON.stringify({ machine, ...empty, ...results, goals }))
}
process.exitCode = failed ? 1 : 0

/** The profiles this run wrote (their names carry the runner's pid). */
function printProfiles() {
  const mine = readdirSync(RESULTS_DIR).filter((f) => f.endsWith(`.cpuprofile`) && f.includes(`-${process.pid}-`))
  console.log(`### CPU profiles (in ${RESULTS_DIR})\n`)
  for (const file of mine.sort()) console.log(formatProfile(summarizeProfile(join(RESULTS_DIR, file), 12)))
}
