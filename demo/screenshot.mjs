#!/usr/bin/env node
// Makes docs/demo-view.png, the README's picture of the live web view: runs the demo, opens its web
// view in headless Chromium (Debian's chromium: apt-get install chromium), and takes the picture a
// few seconds after a node was killed, when the page shows the most. Run after npm run build:
//   node demo/screenshot.mjs [--out FILE]
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CHROMIUM, openBrowser } from './browser.mjs'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
/** Longest wait for the page to reach the moment of the picture, in ms. */
const WAIT_MS = 90_000
/** How long after the kill the picture is taken, in seconds of the run: the charts show the drop. */
const AFTER_KILL_S = 4

const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(ROOT, 'docs', 'demo-view.png') } } })
if (!fs.existsSync(CHROMIUM)) {
  process.stderr.write(`${CHROMIUM} is missing: apt-get install chromium\n`)
  process.exit(2)
}

const demo = spawn(process.execPath, [path.join(ROOT, 'demo', 'cluster.mjs'), '--duration', '40', '--no-view'], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
})
const browser = await openBrowser({ width: 1400, height: 760 })
try {
  const url = await new Promise((resolve, reject) => {
    let out = ''
    demo.stdout.on('data', (d) => {
      out += d
      const found = /live web view: (\S+)/.exec(out)
      if (found) resolve(found[1])
    })
    demo.once('exit', (code) => reject(new Error(`the demo exited (${code}) before printing its URL:\n${out}`)))
  })
  await browser.page.goto(url)
  await browser.page.waitForFunction(() => document.querySelector('#nodes [data-node="n2"]')?.dataset.state === 'killed', undefined, {
    timeout: WAIT_MS,
  })
  const killedAt = await browser.page.evaluate(() => Number(document.body.dataset.second))
  await browser.page.waitForFunction((s) => Number(document.body.dataset.second) >= s, killedAt + AFTER_KILL_S, { timeout: WAIT_MS })
  fs.mkdirSync(path.dirname(values.out), { recursive: true })
  await browser.page.screenshot({ path: values.out })
  process.stdout.write(`wrote ${values.out}\n`)
} finally {
  await browser.close()
  demo.kill('SIGTERM')
}
