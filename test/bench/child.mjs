// Entry point of every benchmark child process: loads roles/<role>.mjs and runs the calls the
// runner sends over IPC ({ id, method, args } → { id, ok, result | error }). `exit` closes the
// role and ends the process normally, so that --cpu-prof writes its profile.
if (process.env.TAP_CHILD_ID !== undefined) {
  // tap's default globs include everything under test/: the benchmark is not a test.
  console.log('1..0 # benchmarks run with `npm run bench`, not as tests')
  process.exit(0)
}
if (typeof process.send !== 'function') {
  console.error('test/bench/child.mjs is started by test/bench/run.mjs')
  process.exit(2)
}

const LIFETIME_MS = 15 * 60_000
const roleName = process.argv[2] ?? ''
if (!/^[a-z-]+$/.test(roleName)) throw new Error(`bad role name ${roleName}`)
const role = await import(new URL(`./roles/${roleName}.mjs`, import.meta.url))

// A child never outlives its runner, however the runner ended.
process.on('disconnect', () => process.exit(0))
setTimeout(() => {
  console.error(`bench child ${roleName}: still alive after ${LIFETIME_MS / 60_000} minutes, exiting`)
  process.exit(3)
}, LIFETIME_MS).unref()

process.on('message', async ({ id, method, args }) => {
  if (method === 'exit') {
    try {
      await role.close?.()
    } finally {
      process.exit(0)
    }
  }
  try {
    if (typeof role[method] !== 'function') throw new Error(`role ${roleName} has no method ${method}`)
    const result = await role[method](...args)
    process.send({ id, ok: true, result })
  } catch (err) {
    process.send({ id, ok: false, error: { message: err?.message ?? String(err), stack: err?.stack } })
  }
})
process.send({ ready: true })
