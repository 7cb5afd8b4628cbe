// What a benchmark run on its own (`node test/bench/<name>.mjs`) starts with: it is skipped when tap
// runs it (tap's default globs include everything under test/), its child processes are killed
// however it ends, and it gives up after a bound instead of hanging. Import it first.
if (process.env.TAP_CHILD_ID !== undefined) {
  console.log('1..0 # SKIP a benchmark: run it with node, not as a test')
  process.exit(0)
}

/** Child processes to kill on the way out: add each one forked. */
export const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

/** Ends the process (exit code 1) if it still runs after `ms`; returns a logger prefixed with `name`. */
export function bounded(name, ms) {
  setTimeout(() => {
    console.error(`${name}: still running after ${ms / 1000} s, giving up`)
    process.exit(1)
  }, ms).unref()
  return (message) => console.error(`[${name} ${new Date().toISOString().slice(11, 19)}] ${message}`)
}
