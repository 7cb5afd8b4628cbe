// One error family: every class peercache exports is a PeercacheError with a stable code; the input
// errors are TypeErrors too, as a bad argument is in Node's own APIs.
import t from 'tap'
import * as api from '../lib/index.js'

const { PeercacheError } = api

/** One instance of each exported error class, made as the library makes it. */
const samples: Record<string, Error> = {
  PeercacheError: new api.PeercacheError('x'),
  InvalidKeyError: new api.InvalidKeyError('g', '', 'keys are not empty'),
  InvalidGroupError: new api.InvalidGroupError('a b', 'bad'),
  InvalidOptionError: new api.InvalidOptionError('maxBytes', 'bad'),
  InvalidValueError: new api.InvalidValueError('g', 'k', 'bad'),
  LoadError: new api.LoadError('g', 'k', 'origin down'),
  LoadTimeoutError: new api.LoadTimeoutError('g', 'k', 'no answer within 4000 ms'),
  PeerUnavailableError: new api.PeerUnavailableError('http://127.0.0.1:1', 'refused'),
  ClosedError: new api.ClosedError(),
  AbortError: new api.AbortError(),
  DiscoveryError: new api.DiscoveryError('peers.local', 'empty', 'no records'),
  SnapshotError: new api.SnapshotError('g', 'bad magic'),
  ConflictError: new api.ConflictError('g', 'k', 1764545000000000, { ifVersion: 1764544000000000 }),
  InvalidLockError: new api.InvalidLockError('', 'a lock name is a non-empty string'),
  LockError: new api.LockError('rebuild', 'queue-full', '1000 callers wait already'),
}

t.test('every exported error class is instanceof PeercacheError and has a stable code', async (t) => {
  const exported = Object.entries(api).filter(([, v]) => typeof v === 'function' && v.prototype instanceof Error)
  t.ok(exported.length >= 10, 'the error classes are exported')
  for (const [name, cls] of exported) {
    const err = samples[name]
    if (err === undefined) {
      t.fail(`${name} has no sample here`)
      continue
    }
    t.ok(err instanceof PeercacheError, `${name} instanceof PeercacheError`)
    t.ok(err instanceof (cls as new (...args: never[]) => Error), `${name} instanceof ${name}`)
    t.match((err as { code?: unknown }).code, /^(PEERCACHE_ERR|ABORT_ERR)/, `${name} has a code`)
    t.equal(err.name, name, `${name}.name`)
  }
})

t.test('input errors are TypeErrors as well; the others are not', async (t) => {
  for (const name of ['InvalidKeyError', 'InvalidGroupError', 'InvalidOptionError', 'InvalidValueError', 'InvalidLockError']) {
    t.ok(samples[name] instanceof TypeError, `${name} instanceof TypeError`)
  }
  for (const name of [
    'LoadError',
    'LoadTimeoutError',
    'PeerUnavailableError',
    'ClosedError',
    'AbortError',
    'DiscoveryError',
    'SnapshotError',
    'ConflictError',
    'LockError',
  ]) {
    t.notOk(samples[name] instanceof TypeError, `${name} is not a TypeError`)
  }
})

t.test('subclasses are told apart, and foreign errors are not peercache errors', async (t) => {
  t.notOk(samples.LoadError instanceof api.PeerUnavailableError)
  t.notOk(samples.InvalidKeyError instanceof api.InvalidGroupError)
  t.notOk(samples.InvalidKeyError instanceof api.LoadError)
  t.notOk(new Error('x') instanceof PeercacheError)
  t.notOk(new TypeError('x') instanceof PeercacheError)
  t.notOk((null as unknown) instanceof PeercacheError)
})

t.test('what a user meets: a bad key and a bad option are both', async (t) => {
  const peer = new api.Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  const group = peer.group('g', { maxBytes: 1 << 20, load: () => Buffer.from('v') })
  const err = await group.get('').catch((e: unknown) => e)
  t.ok(err instanceof PeercacheError && err instanceof TypeError && err instanceof api.InvalidKeyError)
  let thrown: unknown
  try {
    new api.Peer({ self: 'nope' })
  } catch (e) {
    thrown = e
  }
  t.ok(thrown instanceof PeercacheError && thrown instanceof api.InvalidOptionError, 'a bad option')
})
