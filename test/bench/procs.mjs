// Child processes for the scenarios: each runs one role module (roles/*.mjs) behind child.mjs and
// answers calls over the IPC channel. Every call has a timeout, every child is tracked, and
// whatever is still alive when the runner exits is killed, so a failed run leaves nothing behind.
import { fork } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url))
export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

/** Children still running, to kill on the way out. */
const live = new Set()
let profiles = 0

/** Options shared by every child of a run: whether to profile them. */
export const childSettings = { cpuProf: false }

export class RoleProcess {
  #child
  #calls = new Map()
  #nextId = 1
  #exited

  constructor(child, name) {
    this.name = name
    this.#child = child
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    child.on('message', (msg) => this.#answer(msg))
    this.#exited.then(({ code, signal }) => {
      live.delete(child)
      for (const { reject, timer } of this.#calls.values()) {
        clearTimeout(timer)
        reject(new Error(`${name} exited (code ${code}, signal ${signal}) during a call`))
      }
      this.#calls.clear()
    })
  }

  get pid() {
    return this.#child.pid
  }

  /** Calls `method(...args)` in the child's role module; rejects after `timeoutMs`. */
  call(method, args = [], timeoutMs = 120_000) {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id)
        reject(new Error(`${this.name}: ${method} took longer than ${timeoutMs} ms`))
      }, timeoutMs)
      this.#calls.set(id, { resolve, reject, timer })
      this.#child.send({ id, method, args })
    })
  }

  /** Asks the child to close and exit (which writes its CPU profile); kills it if it does not. */
  async stop(timeoutMs = 15_000) {
    if (!live.has(this.#child)) return
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs)
    this.call('exit', [], timeoutMs).catch(() => {}) // the reply may never come: the child exits
    await this.#exited
    clearTimeout(timer)
  }

  #answer(msg) {
    const call = this.#calls.get(msg.id)
    if (call === undefined) return
    this.#calls.delete(msg.id)
    clearTimeout(call.timer)
    if (msg.ok) call.resolve(msg.result)
    else call.reject(Object.assign(new Error(`${this.name}: ${msg.error.message}`), { childStack: msg.error.stack }))
  }
}

/** Starts a child running roles/<role>.mjs; resolves once it is ready for calls. */
export async function startRole(role, { name = role, gc = false } = {}) {
  const execArgv = gc ? ['--expose-gc'] : []
  if (childSettings.cpuProf) {
    mkdirSync(RESULTS_DIR, { recursive: true })
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${RESULTS_DIR}`, `--cpu-prof-name=${name}-${process.pid}-${++profiles}.cpuprofile`)
  }
  // Children write to our stderr: stdout belongs to the tables and the JSON line.
  const child = fork(CHILD, [role], { execArgv, stdio: ['ignore', 2, 2, 'ipc'] })
  live.add(child)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
    child.once('message', (msg) => {
      clearTimeout(timer)
      if (msg?.ready) resolve()
      else reject(new Error(`${name} sent ${JSON.stringify(msg)} instead of ready`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with code ${code} while starting`))
    })
  })
  return new RoleProcess(child, name)
}

/** Starts `count` children of one role in parallel. */
export function startRoles(role, count, options = {}) {
  return Promise.all(Array.from({ length: count }, (_, i) => startRole(role, { ...options, name: `${options.name ?? role}-${i}` })))
}

export function stopAll(processes) {
  return Promise.all(processes.map((p) => p.stop()))
}

/** Tracks a child started elsewhere (redis-server), so that killChildren() ends it too. */
export function track(child) {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Last resort (process exit, Ctrl-C): kills the children this runner started, by their pid. */
export function killChildren() {
  for (const child of live) child.kill('SIGKILL')
  live.clear()
}
