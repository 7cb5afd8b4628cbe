// Mirrors lib/validate.ts: integer/flag/positive/nonNegative bounds, knownOptions, checkKey's byte limit and definedOnly.
import t from 'tap'
import { InvalidKeyError, InvalidOptionError, PeercacheError } from '../lib/errors.js'
import { checkKey, definedOnly, flag, integer, knownOptions, nonNegative, positive } from '../lib/validate.js'
import type { TapTest } from './helpers/tap.js'

/** The InvalidOptionError `fn` throws; fails the test when it throws nothing or something else. */
function optionError(t: TapTest, fn: () => unknown, what: string): InvalidOptionError | undefined {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof InvalidOptionError && err instanceof PeercacheError && err instanceof TypeError, `${what}: InvalidOptionError`)
    return err as InvalidOptionError
  }
  t.fail(`${what}: nothing was thrown`)
  return undefined
}

t.test('integer: min and max are inclusive; anything but an integer in range names the option and the value', async (t) => {
  t.equal(integer('n', 0, 0), 0)
  t.equal(integer('n', 5, 1, 5), 5, 'max itself')
  t.equal(integer('n', 1, 1, 5), 1, 'min itself')
  t.equal(integer('n', Number.MAX_SAFE_INTEGER, 0), Number.MAX_SAFE_INTEGER, 'the default max is MAX_SAFE_INTEGER')
  for (const bad of [-1, 6, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3', null, undefined, 2n, Number.MAX_SAFE_INTEGER + 2]) {
    const err = optionError(t, () => integer('retries', bad, 0, 5), String(bad))
    t.equal(err?.option, 'retries', 'names the option')
    t.equal(err?.code, 'PEERCACHE_ERR_INVALID_OPTION')
    t.match(err?.message, /integer from 0 to 5/, 'says the range')
  }
  const err = optionError(t, () => integer('x', 7, 0, 5), 'above max')
  t.match(err?.message, /got 7/, 'says what it got')
})

t.test('flag: only true and false; a string "false" is refused', async (t) => {
  t.equal(flag('f', true), true)
  t.equal(flag('f', false), false)
  for (const bad of ['false', 'true', 0, 1, null, undefined, {}]) {
    const err = optionError(t, () => flag('tls', bad), JSON.stringify(bad) ?? 'undefined')
    t.equal(err?.option, 'tls')
  }
})

t.test('positive: finite and > 0; nonNegative: finite and >= 0', async (t) => {
  t.equal(positive('p', 0.001), 0.001, 'a fraction above 0')
  t.equal(positive('p', 1e12), 1e12)
  for (const bad of [0, -0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', null, undefined])
    t.equal(optionError(t, () => positive('maxBytes', bad), `positive ${String(bad)}`)?.option, 'maxBytes')
  t.equal(nonNegative('n', 0), 0, '0 is accepted')
  t.equal(nonNegative('n', 2.5), 2.5, 'fractions are accepted')
  for (const bad of [-1, -0.001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '0', null])
    t.equal(optionError(t, () => nonNegative('ttlMs', bad), `nonNegative ${String(bad)}`)?.option, 'ttlMs')
})

t.test('knownOptions: an unknown name is refused by name, with the known ones listed', async (t) => {
  const known = ['maxBytes', 'load'] as const
  knownOptions('GroupOptions', {}, known)
  knownOptions('GroupOptions', { maxBytes: 1, load: undefined }, known)
  t.pass('known names, and an empty object, pass')
  const err = optionError(t, () => knownOptions('GroupOptions', { maxBytes: 1, maxbytes: 2 }, known), 'a typo')
  t.equal(err?.option, 'maxbytes', 'names the unknown option, not a known one')
  t.match(err?.message, /GroupOptions has no option "maxbytes"; it has maxBytes, load/)
  // Only own keys count: options built on a prototype (a class instance) are not refused for what they inherit.
  const inherited = Object.create({ stray: 1 }) as object
  knownOptions('GroupOptions', inherited, known)
  t.pass('inherited properties are not options')
})

t.test('checkKey: the byte limit counts UTF-8, inclusive, for every width of character', async (t) => {
  // [limit, longest accepted key]: 1-, 2-, 3- and 4-byte characters.
  const cases: [number, string, string][] = [
    [3, 'abc', 'abcd'],
    [4, 'üü', 'üüa'],
    [6, '€€', '€€a'],
    [4, '😀', '😀a'],
    [5, 'a😀', '😀😀'],
  ]
  for (const [max, fits, tooLong] of cases) {
    t.doesNotThrow(() => checkKey('g', fits, max), `${Buffer.byteLength(fits)} bytes fit in ${max}`)
    const err = t.throws(() => checkKey('g', tooLong, max), InvalidKeyError) as InvalidKeyError
    t.equal(err.code, 'PEERCACHE_ERR_INVALID_KEY')
    t.equal(err.group, 'g', 'names the group')
    t.equal(err.key, tooLong, 'names the key')
    t.match(err.message, new RegExp(`at most ${max} bytes`), `${Buffer.byteLength(tooLong)} bytes > ${max}`)
  }
})

t.test('checkKey: type, emptiness and lone surrogates, each with its own reason', async (t) => {
  const reasons: [unknown, RegExp][] = [
    [7, /keys are strings/],
    [undefined, /keys are strings/],
    [new String('k'), /keys are strings/],
    ['', /keys are not empty/],
    ['\ud83d', /lone surrogate/],
    ['x\udc00', /lone surrogate/],
  ]
  for (const [key, reason] of reasons) {
    const err = t.throws(() => checkKey('orders', key, 4096), InvalidKeyError) as InvalidKeyError
    t.match(err.message, reason, String(key))
    t.equal(err.group, 'orders')
  }
  t.doesNotThrow(() => checkKey('g', '\u{1F600}'.repeat(1024), 4096), 'a well-formed pair at the limit')
})

t.test('definedOnly: drops undefined and null, keeps falsy values, copies', async (t) => {
  const given = { a: undefined, b: null, c: 0, d: false, e: '', f: 'x' }
  const out = definedOnly(given)
  t.same(out, { c: 0, d: false, e: '', f: 'x' })
  t.not(out, given, 'a new object')
  t.same(Object.keys(given), ['a', 'b', 'c', 'd', 'e', 'f'], 'the input is unchanged')
  const defaults = { timeoutMs: 1000, retries: 3 }
  t.same({ ...defaults, ...definedOnly({ timeoutMs: undefined, retries: 0 }) }, { timeoutMs: 1000, retries: 0 }, 'spread keeps defaults')
})
