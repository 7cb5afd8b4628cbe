// A Node script run as its own OS process (a demo app, an example), with its stdout read line by line
// so a test can wait for what the script says it did. Killed at teardown if it is still running.
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { memberEnv } from './cluster.js'
import type { Teardown } from './net.js'

/** How long `next` waits for a matching line by default, in ms: generous, so a slow machine does not fail it. */
const NEXT_MS = 30_000

export interface ScriptProcess<Line> {
  readonly child: ChildProcess
  /** The exit code, or null when a signal ended it. */
  readonly exited: Promise<number | null>
  /** Every stdout line so far, parsed. */
  readonly lines: readonly Line[]
  /** The first line so far or to come that matches; rejects after `withinMs` (with the output so far) instead of hanging. */
  next(match: (line: Line) => boolean, withinMs?: number): Promise<Line>
}

export interface ScriptOptions<Line> {
  /** Arguments after the script's path. */
  args?: string[]
  /** Variables set for the child, on top of this process's environment (without tap's coverage hook). */
  env?: NodeJS.ProcessEnv
  /** Turns a stdout line into what `lines` and `next` see, e.g. JSON.parse. Default: the line as it is. */
  parse?: (line: string) => Line
}

export function startScript<Line = string>(t: Teardown, script: string, options: ScriptOptions<Line> = {}): ScriptProcess<Line> {
  const parse = options.parse ?? ((line: string) => line as Line)
  const env = { ...memberEnv(false), ...options.env }
  const child = spawn(process.execPath, [script, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const stderr: string[] = []
  child.stderr.on('data', (d) => stderr.push(String(d)))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  })
  const lines: Line[] = []
  const waiters = new Set<() => void>()
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(parse(line))
    for (const w of waiters) w()
  })
  return {
    child,
    exited,
    lines,
    next(match, withinMs = NEXT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match)
          if (found === undefined) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          const output = `stdout ${JSON.stringify(lines)}; stderr ${stderr.join('')}`
          reject(new Error(`${script} (pid ${child.pid}): no matching line within ${withinMs} ms; ${output}`))
        }, withinMs)
        waiters.add(check)
        check()
      })
    },
  }
}

/** A script run to its end: its exit code and whole output. */
export interface ScriptRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs a Node script to its end with its output captured (from `cwd`); killed at teardown if it is
 * still running, and rejected after `hangMs` (it did hang) with what it wrote to stderr.
 */
export function runToEnd(t: Teardown, script: string, args: string[], options: { cwd: string; hangMs: number }): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} ${args.join(' ')} still running after ${options.hangMs} ms\n${stderr.slice(-4000)}`))
    }, options.hangMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
