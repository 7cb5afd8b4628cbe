// lib/backup.ts through the Peer: backups on a schedule and on close, the newest `keep` kept, a
// restore at start from the newest readable one, and atomic writes: a real process SIGKILLed in the
// middle of a save leaves the previous backup whole.
import { fork } from 'node:child_process'
import { createReadStream, readdirSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Peer, type PeerOptions } from '../lib/index.js'
import { restoreSnapshot } from '../lib/snapshot.js'
import { Store } from '../lib/store.js'
import { stringCodec } from '../lib/codec.js'
import { eventually } from './helpers/inproc.js'
import type { TapTest } from './helpers/tap.js'

async function tempDir(t: TapTest): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'peercache-backup-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

let port = 41_000
/** A lone peer (never listening) with backups in `dir`, and a string group "g" counting its origin loads. */
function backedUp(t: TapTest, backup: PeerOptions['backup']) {
  const peer = new Peer({ self: `http://127.0.0.1:${port++}`, backup })
  t.teardown(() => peer.close())
  let loads = 0
  const group = peer.group('g', {
    codec: 'string',
    maxBytes: 1 << 20,
    load: async (key) => {
      loads++
      return `loaded ${key}`
    },
  })
  return { peer, group, loads: () => loads }
}

const snaps = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.snap')).sort()

t.test('saved on a schedule; only the newest `keep` are kept', async (t) => {
  const dir = await tempDir(t)
  const { peer, group } = backedUp(t, { dir, intervalMs: 20, keep: 2, restoreOnStart: false })
  await group.set('k', 'v')
  await eventually(() => readdirSync(dir).filter((n) => n.endsWith('.snap')).length >= 1, 'the schedule saved a backup')
  for (let i = 0; i < 4; i++) await peer.backup()
  const files = await snaps(dir)
  t.equal(files.length, 2, 'two backups of group g are left')
  t.ok(
    files.every((n) => /^g\.\d{15}\.snap$/.test(n)),
    'named {group}.{ms since the epoch}.snap',
  )
  t.equal((await readdir(dir)).filter((n) => n.endsWith('.tmp')).length, 0, 'no temporary file is left')
})

t.test('close saves; the next start restores the newest backup, and its gets need no origin', async (t) => {
  const dir = await tempDir(t)
  const first = backedUp(t, { dir, intervalMs: 3_600_000 })
  for (let i = 0; i < 50; i++) await first.group.set(`k${i}`, `v${i}`)
  await first.peer.backup()
  await first.group.set('k0', 'changed after the first backup')
  await first.peer.close() // saves the last state
  t.equal((await snaps(dir)).length, 2)

  const second = backedUp(t, { dir, intervalMs: 3_600_000 })
  const [restored] = await second.peer.restored()
  t.match(restored, { group: 'g', result: { restored: 50, damaged: 0, complete: true } })
  t.equal(path.basename(restored!.file!), (await snaps(dir)).at(-1), 'from the newest file')
  t.equal(await second.group.get('k0'), 'changed after the first backup', 'what the peer held when it closed')
  t.equal(await second.group.get('k49'), 'v49')
  t.equal(second.loads(), 0, 'no origin load')
})

t.test('a newest backup that cannot be read is passed over for the one before', async (t) => {
  const dir = await tempDir(t)
  const first = backedUp(t, { dir, intervalMs: 3_600_000, restoreOnStart: false })
  await first.group.set('k', 'v')
  await first.peer.backup()
  await writeFile(path.join(dir, `g.${String(Date.now() + 60_000).padStart(15, '0')}.snap`), 'not a snapshot')
  const second = backedUp(t, { dir, intervalMs: 3_600_000 })
  const [restored] = await second.peer.restored()
  t.match(restored, { result: { restored: 1, complete: true } })
  t.equal(await second.group.get('k'), 'v')
})

t.test('bad backup options are refused with the option named', async (t) => {
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', backup: { dir: '' } }), {
    code: 'PEERCACHE_ERR_INVALID_OPTION',
    option: 'backup.dir',
  })
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', backup: { dir: '/tmp/x', keep: 0 } }), {
    code: 'PEERCACHE_ERR_INVALID_OPTION',
    option: 'backup.keep',
  })
  t.throws(() => new Peer({ self: 'http://127.0.0.1:1', backup: { dir: '/tmp/x', intervalMs: -1 } }), {
    code: 'PEERCACHE_ERR_INVALID_OPTION',
    option: 'backup.intervalMs',
  })
  const peer = new Peer({ self: 'http://127.0.0.1:1' })
  t.teardown(() => peer.close())
  await t.rejects(peer.backup(), { code: 'PEERCACHE_ERR_INVALID_OPTION', option: 'backup' }, 'backup() without the option')
})

t.test('a process SIGKILLed in the middle of a save leaves the previous backup whole', async (t) => {
  const dir = await tempDir(t)
  const child = fork(new URL('./fixtures/backup-writer.mjs', import.meta.url), [dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => child.kill('SIGKILL'))
  const saved: string[] = []
  child.on('message', (m: { saved: string }) => saved.push(m.saved))
  await eventually(() => saved.length >= 1, 'the writer saved one backup', 120_000)
  // Watch the directory for the next save's temporary file, and kill the writer while it is there.
  const deadline = Date.now() + 60_000
  let caught = false
  while (!caught && Date.now() < deadline && child.exitCode === null) {
    if (readdirSync(dir).some((n) => n.endsWith('.tmp'))) {
      child.kill('SIGKILL')
      caught = true
    } else await sleep(1)
  }
  t.ok(caught, 'the writer was killed while a temporary file was being written')
  await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(null)))
  t.equal(child.signalCode, 'SIGKILL')

  const names = await readdir(dir)
  const temp = names.find((n) => n.endsWith('.tmp'))
  t.ok(temp, 'the cut write left its temporary file')
  const target = () => ({
    group: 'big',
    self: 'x',
    store: new Store<string>(64 << 20, 0),
    codec: stringCodec,
    maxKeyBytes: 4096,
    keepsAbsent: false,
    holders: () => [],
    checkKey: () => {},
  })
  const partial = await restoreSnapshot(target(), createReadStream(path.join(dir, temp!))).catch((e: Error) => e.message)
  t.ok(typeof partial === 'string' || !partial.complete, 'the temporary file is not a whole snapshot (the kill did cut a write)')
  for (const name of names.filter((n) => n.endsWith('.snap'))) {
    const result = await restoreSnapshot(target(), createReadStream(path.join(dir, name)))
    t.match(result, { restored: 400, damaged: 0, complete: true }, `${name} is whole`)
  }

  // A new process restores from the newest backup, and its first save deletes the crashed write.
  const peer = new Peer({ self: 'http://127.0.0.1:1', backup: { dir, intervalMs: 3_600_000, keep: 1 } })
  t.teardown(() => peer.close())
  const group = peer.group('big', { maxBytes: 64 << 20, load: () => Buffer.from('origin') })
  const [restored] = await peer.restored()
  t.match(restored, { result: { restored: 400, complete: true } })
  t.equal((await group.get('key-7')).length, 50_000)
  await peer.backup()
  t.same(
    (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
    [],
    'the next save deleted the temporary file of the killed process',
  )
})
