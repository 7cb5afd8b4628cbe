// The demo's live web view in a real browser (Debian's chromium, headless, driven by playwright-core):
// every node renders, the numbers move, and the page follows a node's SIGKILL and restart.
import t from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureDebianCommand } from './helpers/debian.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** Screenshots of the page (git-ignored). */
const RESULTS = path.join(ROOT, 'test', 'results')
/** The run: n2 is killed at 40% of it and restarted at 70%. */
const DURATION_S = 20
/** Longest wait for one thing on the page (the run's whole length and then some), in ms. */
const WAIT_MS = 60_000

const browserTool = ensureDebianCommand('chromium', 'chromium')

interface Numbers {
  second: number
  nodes: Record<string, { state: string; requests: number; originLoads: number; changeEvents: string; holds: string; share: string }>
}

t.test(
  'the web view draws every node, its numbers move, and it shows n2 killed and back',
  { skip: 'skip' in browserTool && browserTool.skip },
  async (t) => {
    // @ts-expect-error plain JS module of the demo, no types
    const { openBrowser } = await import('../demo/browser.mjs')
    // The browser first: it is the slow part to start, and the page should see the run from its start.
    const browser = await openBrowser()
    t.teardown(() => browser.close())
    const demo = spawn(
      process.execPath,
      [path.join(ROOT, 'demo', 'cluster.mjs'), '--nodes', '3', '--duration', String(DURATION_S), '--rate', '100', '--no-view'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const exited = new Promise<number | null>((resolve) => demo.on('exit', resolve))
    t.teardown(() => void demo.kill('SIGKILL'))
    const url = await webUrl(demo)
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'the demo printed the web view URL, on 127.0.0.1')

    const { page } = browser
    await page.goto(url)
    const waitFor = (fn: string, what: string) =>
      page.waitForFunction(fn, undefined, { timeout: WAIT_MS }).catch(() => t.fail(`waited for ${what}`))
    const read = (): Promise<Numbers> =>
      page.evaluate(() => {
        const text = (el: Element, field: string) => el.querySelector(`[data-field="${field}"]`)?.textContent ?? ''
        const nodes: Numbers['nodes'] = {}
        for (const card of document.querySelectorAll<HTMLElement>('#nodes [data-node]')) {
          const row = document.querySelector(`#shares [data-node="${card.dataset.node}"]`)
          nodes[card.dataset.node!] = {
            state: card.dataset.state ?? '',
            requests: Number(text(card, 'requests')),
            originLoads: Number(text(card, 'originLoads')),
            changeEvents: text(card, 'changeEvents'),
            holds: row ? text(row, 'holds') : '',
            share: row ? text(row, 'share') : '',
          }
        }
        return { second: Number(document.body.dataset.second ?? 0), nodes }
      })

    await waitFor('Number(document.body.dataset.second) >= 2', 'second 2')
    const first = await read()
    t.same(Object.keys(first.nodes).sort(), ['all', 'n1', 'n2', 'n3'], 'a card for the cluster and one per node')
    for (const id of ['n1', 'n2', 'n3']) t.match(first.nodes[id]!.share, /^\d+\.\d%$/, `${id}'s share of the keyspace is shown`)
    await waitFor(`Number(document.body.dataset.second) >= ${first.second + 2}`, 'two more seconds')
    const second = await read()
    // One request in 50 is a write; each node counts the change events it hears.
    t.match(second.nodes.all!.changeEvents, /^\d+$/, `the change events heard are counted (${second.nodes.all!.changeEvents})`)
    for (const id of ['all', 'n1', 'n2', 'n3']) {
      const [a, b] = [first.nodes[id]!, second.nodes[id]!]
      const moved = `${id}: requests from ${a.requests} (second ${first.second}) to ${b.requests} (second ${second.second})`
      // A node the chaos step killed in between serves nothing meanwhile (on a slow machine the page may start late).
      if (id === 'all' || b.state === 'up') t.ok(b.requests > a.requests, moved)
      else t.comment(`${moved}, ${id} ${b.state} by then`)
    }
    t.ok(second.nodes.all!.originLoads >= first.nodes.all!.originLoads, 'origin loads never go back')

    fs.mkdirSync(RESULTS, { recursive: true })
    await waitFor(`document.querySelector('#nodes [data-node="n2"]').dataset.state === 'killed'`, 'n2 shown killed')
    await waitFor(`document.querySelector('#shares [data-node="n2"] [data-field="holds"]').textContent === '0.0%'`, 'n2 holding no keys')
    const down = await read()
    t.equal(down.nodes.n2!.state, 'killed', 'n2 is shown killed')
    t.equal(down.nodes.n2!.holds, '0.0%', 'while down, n2 holds none of the keyspace')
    t.ok(
      parseFloat(down.nodes.n1!.holds) > parseFloat(down.nodes.n1!.share),
      `n1 holds more than its share meanwhile (${down.nodes.n1!.holds})`,
    )
    await page.screenshot({ path: path.join(RESULTS, 'demo-web-n2-down.png'), fullPage: true })

    await waitFor(`document.querySelector('#nodes [data-node="n2"]').dataset.state === 'up'`, 'n2 shown up again')
    const back = await read()
    t.equal(back.nodes.n2!.holds, back.nodes.n2!.share, `back up, n2 holds its share again (${back.nodes.n2!.share})`)
    await waitFor(`document.body.dataset.status === 'ended'`, 'the page to say the run is over')
    await page.screenshot({ path: path.join(RESULTS, 'demo-web-end.png'), fullPage: true })
    const events = await page.locator('#events li').allTextContents()
    t.match(events.join('\n'), /n2 killed with SIGKILL[\s\S]*n2 is back/, 'the events list shows the kill and the restart')
    t.same(browser.errors, [], 'no error on the page')
    t.equal(await exited, 0, 'the demo ran to its end and exited 0')
  },
)

/** The URL the demo prints once its web view listens. */
function webUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer) => {
      out += d
      const found = /live web view: (\S+)/.exec(out)
      if (found) {
        child.stdout?.off('data', onData)
        resolve(found[1]!)
      }
    }
    child.stdout?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before printing its web view URL:\n${out}`)))
  })
}
