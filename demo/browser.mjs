// Headless Chromium for looking at the live web view: Debian's /usr/bin/chromium driven by
// playwright-core (a devDependency, which never downloads a browser of its own), a fresh profile
// each time, nothing that calls home. Used by test/demo-web.test.ts and demo/screenshot.mjs.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * Starts the browser with a new profile; resolves with `{ page, close }`. `close` ends the browser
 * and removes the profile. Page errors are collected in `errors`.
 */
export async function openBrowser({ width = 1400, height = 900 } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'peercache-chromium-'))
  const remove = () => fs.rmSync(profile, { recursive: true, force: true })
  let context
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width, height },
    })
  } catch (err) {
    remove()
    throw err
  }
  const page = context.pages()[0] ?? (await context.newPage())
  const errors = []
  page.on('pageerror', (err) => errors.push(err.message))
  const close = async () => {
    await context.close().catch(() => {})
    remove()
  }
  return { page, errors, close }
}
