// Versions from the wire: only decimal safe integers not ahead of this clock by more than the skew
// are believed; the clock-freeze value 1.7976931348623157e308 and its kin are refused.
import t from 'tap'
import { plausibleVersion, versionHeader } from '../lib/versions.js'

const NOW = 1_750_000_000_000
const SKEW = 5000

t.test('a version of now, or one within the skew ahead, is believed', async (t) => {
  t.equal(versionHeader(String(NOW * 1000), SKEW, NOW), NOW * 1000)
  t.equal(versionHeader(String((NOW + SKEW) * 1000), SKEW, NOW), (NOW + SKEW) * 1000, 'exactly the skew ahead')
  t.equal(versionHeader('0', SKEW, NOW), 0)
  t.equal(versionHeader('17', SKEW, NOW), 17, 'an old version is not suspicious')
  t.equal(versionHeader(undefined, SKEW, NOW), undefined, 'absent')
})

t.test('anything else is refused (null)', async (t) => {
  const bad = [
    '1.7976931348623157e308',
    String(Number.MAX_VALUE),
    'Infinity',
    'NaN',
    '-1',
    '1.5',
    '1e3',
    '0x10',
    ' 1',
    '1 ',
    '',
    '+1',
    '9007199254740993',
    '99999999999999999',
    String((NOW + SKEW) * 1000 + 1),
    String(NOW * 1000 * 2),
  ]
  for (const v of bad) t.equal(versionHeader(v, SKEW, NOW), null, JSON.stringify(v))
  t.equal(versionHeader(['1', '2'], SKEW, NOW), null, 'a repeated header')
})

t.test('plausibleVersion checks numbers from binary frames the same way', async (t) => {
  t.ok(plausibleVersion(NOW * 1000, SKEW, NOW))
  for (const v of [Number.MAX_VALUE, Number.NaN, -1, 0.5, 2 ** 53, (NOW + SKEW + 1) * 1000])
    t.notOk(plausibleVersion(v, SKEW, NOW), String(v))
})
