// The demo's live terminal view as a user sees it: run in a real 120x30 tmux pane and read back with
// capture-pane (the redraw must leave nothing behind), and piped (one frame per second, none twice).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { ensureDebianCommand } from './helpers/debian.js'
import { runToEnd } from './helpers/script.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLUSTER = path.join(ROOT, 'demo', 'cluster.mjs')
/** Longest a demo run may take here before the test gives up on it, in ms. */
const HANG_MS = 60_000
/** How often the tmux pane is read while the demo runs, in ms. */
const CAPTURE_EVERY_MS = 500
/** The live view's title line: "peercache demo · 3 nodes · ... · 5 s of 6 s". */
const TITLE = /^peercache demo · .* · (\d+) s of (\d+) s$/

const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length

const tmux = ensureDebianCommand('tmux', 'tmux')

t.test(
  'in a 120x30 tmux pane the live view is one title and one table, redrawn in place',
  { skip: 'skip' in tmux && tmux.skip },
  async (t) => {
    // A server of our own (-L), so no one else's tmux is touched; killing it ends the demo too.
    const socket = `peercache-demo-view-${process.pid}`
    const tm = (...args: string[]) => spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8', cwd: ROOT })
    t.teardown(() => void tm('kill-server'))
    const demo = `node ${CLUSTER} --nodes 3 --duration 6 --rate 150; echo "demo exited: $?"; exec sleep 120`
    const started = tm('new-session', '-d', '-s', 'demo', '-x', '120', '-y', '30', '-c', ROOT, demo)
    t.equal(started.status, 0, 'tmux started the demo', { stderr: started.stderr })

    // -J joins a line the pane wrapped, so a line too wide for it shows as one.
    const capture = () =>
      tm('capture-pane', '-p', '-J', '-S', '-', '-t', 'demo')
        .stdout.split('\n')
        .map((l) => l.trimEnd())
    let screen: string[] = []
    let framesSeen = 0
    for (const end = Date.now() + HANG_MS; Date.now() < end; await sleep(CAPTURE_EVERY_MS)) {
      screen = capture()
      if (screen.some((l) => l.startsWith('demo exited:'))) break
      // While it runs, too: never a second title or header left behind by a redraw.
      const titles = count(screen, TITLE)
      if (titles > 0) framesSeen++
      if (titles > 1 || count(screen, /^node\s+state\s+req\/s/) > 1) break
    }
    const text = screen.join('\n')
    t.match(text, /^demo exited: 0$/m, 'the demo ran to its end and exited 0', { screen: text })
    t.ok(framesSeen > 0, `the live view was on screen while the demo ran (${framesSeen} reads)`)
    t.equal(count(screen, TITLE), 1, 'one title line', { screen: text })
    t.equal(count(screen, /^\s+last second -+\s+since start -+$/), 1, 'one line naming the column groups')
    t.equal(
      count(screen, /^node\s+state\s+req\/s\s+main-hit\s+hot-hit\s+origin loads\/s\s+p50 ms\s+p99 ms\s+peer fetches\s+origin loads$/),
      1,
      'one live table header',
    )
    t.equal(count(screen, /^all\s/), 1, 'one cluster row')
    t.equal(count(screen, /^since start: \d+ requests/), 1, 'one line of totals')
    // Each node shows once in the live table and once in the summary under it.
    for (const id of ['n1', 'n2', 'n3']) t.equal(count(screen, new RegExp(`^${id}\\s`)), 2, `${id}: one row live, one in the summary`)
    t.ok(
      screen.every((l) => l.length <= 120),
      'no line is wider than the pane',
    )
  },
)

t.test('piped, the view prints one frame per second of the run, none twice, each with every node', async (t) => {
  const { code, stdout, stderr } = await runToEnd(
    t,
    CLUSTER,
    ['--nodes', '2', '--duration', '5', '--rate', '100', '--no-chaos', '--no-web'],
    { cwd: ROOT, hangMs: HANG_MS },
  )
  t.equal(code, 0, 'the demo exits with 0', { stdout: stdout.slice(-2000), stderr: stderr.slice(-2000) })
  // A frame: its title line and the lines under it, up to a blank line.
  const frames = stdout.split('\n\n').flatMap((block) => {
    const lines = block.split('\n')
    const title = lines.findIndex((l) => TITLE.test(l))
    return title === -1 ? [] : [lines.slice(title)]
  })
  t.ok(frames.length >= 1, `${frames.length} frames`)
  const seconds = frames.map((f) => Number(TITLE.exec(f[0]!)![1]))
  t.ok(
    seconds.every((s, i) => s >= 1 && (i === 0 || s > seconds[i - 1]!)),
    `each frame is a later second (${seconds.join(', ')}; the last may be past the 5 s of load, while the last requests finish)`,
  )
  t.ok(seconds.at(-1)! >= 5, 'the last frame is the end of the run')
  const incomplete = frames.filter((f) => count(f, /^n1\s/) !== 1 || count(f, /^n2\s/) !== 1 || count(f, /^all\s/) !== 1)
  t.same(incomplete, [], 'every frame has a row for each node and one for all')
})
