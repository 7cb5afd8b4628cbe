// Tools a test needs from Debian (prometheus, promtool, tmux, chromium...), installed by the test
// itself with apt-get when missing, so that nothing depends on what was installed by hand. A test
// that cannot have its tool skips with the one-line reason this returns.
import { spawnSync } from 'node:child_process'

/** How long apt-get waits for another apt-get (other tests may install at the same time), in s. */
const LOCK_WAIT_S = 300

/** The absolute path of `command` on PATH, if any. */
export function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path.startsWith('/') ? path : undefined
}

/**
 * Makes sure `command` exists, installing the Debian package `pkg` when it does not (apt-get
 * update only when the first try fails: the package lists may be stale or absent). Returns the
 * command's path, or why it cannot be had (for `t.skip` / `{ skip }`).
 */
export function ensureDebianCommand(command: string, pkg: string): { path: string } | { skip: string } {
  const present = which(command)
  if (present) return { path: present }
  if (process.getuid?.() !== 0) return { skip: `${command} is missing and installing ${pkg} needs root` }
  if (!which('apt-get')) return { skip: `${command} is missing and there is no apt-get to install ${pkg}` }
  const apt = (...args: string[]) =>
    spawnSync('apt-get', ['-o', `DPkg::Lock::Timeout=${LOCK_WAIT_S}`, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  const install = () => apt('install', '-y', '--no-install-recommends', pkg)
  let result = install()
  if (result.status !== 0) {
    apt('update')
    result = install()
  }
  const path = which(command)
  if (path) return { path }
  const why = (result.stderr ?? '').trim().split('\n').pop() || `exit ${result.status}`
  return { skip: `${command} is missing and apt-get install ${pkg} failed: ${why}` }
}
