// The part of Vitest's API that @keyv/test-suite calls (`test.it`, `test.beforeEach`,
// `test.afterEach`, and `t.expect(...)` with the matchers it uses), on tap: the suite's own cases
// run unchanged in `npm test`. A case named in `differs` runs as a skipped tap test with its reason.
import type { TapTest } from './tap.js'

type Hook = () => unknown
type Case = (t: { expect: Expect }) => unknown
interface Matchers {
  toBe(expected: unknown): void
  toEqual(expected: unknown): void
  toBeTruthy(): void
  toBeFalsy(): void
  toBeUndefined(): void
  toBeDefined(): void
  toBeNull(): void
}
type Expect = ((actual: unknown) => Matchers & { not: Matchers }) & { assertions(n: number): void }

export interface VitestLike {
  it(name: string, fn: Case): void
  beforeEach(fn: Hook): void
  afterEach(fn: Hook): void
}

/** A Vitest-like `test` object whose cases become subtests of `parent`. */
export function vitestOn(parent: TapTest, differs: Record<string, string> = {}): VitestLike {
  const before: Hook[] = []
  const after: Hook[] = []
  return {
    beforeEach: (fn) => void before.push(fn),
    afterEach: (fn) => void after.push(fn),
    it(name, fn) {
      const skip = differs[name]
      parent.test(name, skip ? { skip } : {}, async (t) => {
        for (const hook of before) await hook()
        try {
          await fn({ expect: expectOn(t) })
        } finally {
          for (const hook of after) await hook()
        }
      })
    },
  }
}

function expectOn(t: TapTest): Expect {
  const matchers = (actual: unknown, negate: boolean): Matchers => {
    const check = (pass: boolean, what: string) => t.ok(negate ? !pass : pass, `expect(${show(actual)})${negate ? '.not' : ''}.${what}`)
    return {
      toBe: (expected) => check(Object.is(actual, expected), `toBe(${show(expected)})`),
      toEqual: (expected) => {
        if (negate) check(JSON.stringify(actual) === JSON.stringify(expected), `toEqual(${show(expected)})`)
        else t.same(actual, expected, `expect(${show(actual)}).toEqual(${show(expected)})`)
      },
      toBeTruthy: () => check(Boolean(actual), 'toBeTruthy()'),
      toBeFalsy: () => check(!actual, 'toBeFalsy()'),
      toBeUndefined: () => check(actual === undefined, 'toBeUndefined()'),
      toBeDefined: () => check(actual !== undefined, 'toBeDefined()'),
      toBeNull: () => check(actual === null, 'toBeNull()'),
    }
  }
  const expect = (actual: unknown) => Object.assign(matchers(actual, false), { not: matchers(actual, true) })
  // Vitest checks the count at the end of the case; tap's plan does the same.
  return Object.assign(expect, { assertions: (n: number) => t.plan(n) })
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  if (typeof value === 'symbol' || typeof value === 'bigint') return String(value)
  if (Buffer.isBuffer(value)) return 'Buffer'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
