// Command-line options of `npm run bench -- [options]`.

export const SCENARIOS = ['localHit', 'remoteHit', 'coldMiss', 'stampede', 'zipf', 'memory', 'ring']

export const USAGE = `npm run bench -- [--quick] [--json] [--only name[,name]] [--install] [--cpu-prof] [--connections N] [--pipelining N] [--metrics]
  --quick          every scenario, shorter runs (all together under 4 minutes)
  --json           the last line of stdout is one JSON object with every result
  --only name      run these scenarios only: ${SCENARIOS.join(', ')}
  --install        if redis-server is missing, run \`apt-get install -y redis-server\` first
  --cpu-prof       child processes run with node --cpu-prof; profiles go to test/bench/results/
  --connections N  keep-alive connections per peer for peercache's client (default: the library's)
  --pipelining N   HTTP/1.1 requests in flight per connection for peercache's client (default: the library's)
  --metrics        localHit also measures a group whose peer has Prometheus metrics registered (prom-client)`

/** Parses argv into options; throws with the usage text on anything unknown. */
export function parseArgs(argv) {
  const options = {
    quick: false,
    json: false,
    install: false,
    cpuProf: false,
    connections: undefined,
    pipelining: undefined,
    metrics: false,
    only: [...SCENARIOS],
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick') options.quick = true
    else if (arg === '--json') options.json = true
    else if (arg === '--install') options.install = true
    else if (arg === '--cpu-prof') options.cpuProf = true
    else if (arg === '--metrics') options.metrics = true
    else if (arg === '--only' || arg.startsWith('--only=')) options.only = scenarioList(arg.includes('=') ? arg.slice(7) : argv[++i])
    else if (arg === '--connections') options.connections = positiveInt(argv[++i])
    else if (arg === '--pipelining') options.pipelining = positiveInt(argv[++i])
    else if (arg === '--help' || arg === '-h') throw new UsageError('')
    else throw new UsageError(`unknown option ${arg}`)
  }
  return options
}

export class UsageError extends Error {}

function scenarioList(text) {
  const names = String(text ?? '')
    .split(',')
    .filter(Boolean)
  if (names.length === 0) throw new UsageError('--only needs a scenario name')
  return names.map((name) => {
    const found = SCENARIOS.find((s) => s.toLowerCase() === name.toLowerCase().replace(/-/g, ''))
    if (!found) throw new UsageError(`unknown scenario ${name}`)
    return found
  })
}

function positiveInt(text) {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`expected a positive integer, got ${text}`)
  return n
}
