// Scheduled backups: every group's snapshot saved to a directory on an interval and on close, and the
// newest one read back when a group is created. A file is written under a temporary name, flushed to
// disk (fsync) and renamed: a crash mid-write leaves the previous file whole, and a reader never
// sees a half-written one under a backup's name.
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { BACKUP_DEFAULTS } from './defaults.js'
import { InvalidOptionError, SnapshotError } from './errors.js'
import type { Group } from './group.js'
import { BACKUP_OPTION_NAMES, type BackupOptions, type RestoreResult } from './options.js'
import { integer, knownOptions } from './validate.js'

/** What a restore at start found for a group. */
export interface BackupRestore {
  group: string
  /** The file read, or undefined when the group had no readable backup. */
  file: string | undefined
  result: RestoreResult | undefined
}

/** `{group}.{ms since the epoch, 15 digits}.snap`: names sort by time, and a group's are told from another's. */
function fileName(group: string, at: number): string {
  return `${group}.${String(at).padStart(15, '0')}.snap`
}
const TEMP_SUFFIX = '.tmp'

export class Backups {
  readonly dir: string
  readonly #intervalMs: number
  readonly #keep: number
  readonly restoreOnStart: boolean
  readonly #groups: () => Iterable<Group<unknown>>
  readonly #onError: (err: unknown) => void
  #timer: NodeJS.Timeout | undefined
  /** The save under way: saves never overlap (a slow disk makes the next interval wait). */
  #saving: Promise<string[]> | undefined
  #lastAt = 0

  constructor(options: BackupOptions, groups: () => Iterable<Group<unknown>>, onError: (err: unknown) => void) {
    if (options === null || typeof options !== 'object' || typeof options.dir !== 'string' || options.dir === '')
      throw new InvalidOptionError('backup.dir', 'backups need a directory: { dir }')
    knownOptions('BackupOptions', options, BACKUP_OPTION_NAMES)
    this.dir = options.dir
    // setInterval takes at most 2^31-1 ms.
    this.#intervalMs = integer('backup.intervalMs', options.intervalMs ?? BACKUP_DEFAULTS.intervalMs, 1, 2 ** 31 - 1)
    this.#keep = integer('backup.keep', options.keep ?? BACKUP_DEFAULTS.keep, 1)
    this.restoreOnStart = options.restoreOnStart ?? BACKUP_DEFAULTS.restoreOnStart
    this.#groups = groups
    this.#onError = onError
  }

  /** Starts saving every intervalMs (the timer does not keep the process alive). */
  start(): void {
    this.#timer ??= setInterval(() => {
      this.save().catch(this.#onError)
    }, this.#intervalMs).unref()
  }

  /** Saves every group now (after a save under way, if any); resolves with the files written. */
  save(): Promise<string[]> {
    const next = (this.#saving ?? Promise.resolve([])).catch(() => []).then(() => this.#saveAll())
    this.#saving = next
    return next
  }

  /** Stops the schedule and saves a last time. */
  async close(): Promise<string[]> {
    clearInterval(this.#timer)
    this.#timer = undefined
    return this.save()
  }

  async #saveAll(): Promise<string[]> {
    await mkdir(this.dir, { recursive: true })
    // Two saves within one ms would get one name; the later file replaces the earlier, so give it a later one.
    const at = Math.max(Date.now(), this.#lastAt + 1)
    this.#lastAt = at
    const files: string[] = []
    for (const group of this.#groups()) {
      files.push(await this.#saveGroup(group, at))
      await this.#prune(group.name)
    }
    return files
  }

  async #saveGroup(group: Group<unknown>, at: number): Promise<string> {
    const file = path.join(this.dir, fileName(group.name, at))
    const temp = `${file}.${process.pid}${TEMP_SUFFIX}`
    const handle = await open(temp, 'w')
    try {
      // flush: the stream fsyncs the file before it closes it, and the snapshot resolves after the
      // close, so the bytes are on disk before the name says they are a backup.
      await group.snapshot(handle.createWriteStream({ flush: true }))
    } catch (err) {
      await handle.close().catch(() => {})
      await rm(temp, { force: true })
      throw err
    }
    await rename(temp, file)
    await syncDir(this.dir) // and so is the rename
    return file
  }

  /** Deletes a group's backups beyond the newest `keep`, and temporary files a crash left behind. */
  async #prune(group: string): Promise<void> {
    const names = await readdir(this.dir)
    const old = this.#backupsOf(group, names).slice(this.#keep)
    const mine = `.${process.pid}${TEMP_SUFFIX}`
    // A temporary file of another process id is a crashed write (each process has its own directory).
    const crashed = names.filter((n) => n.startsWith(`${group}.`) && n.endsWith(TEMP_SUFFIX) && !n.endsWith(mine))
    await Promise.all([...old, ...crashed].map((n) => rm(path.join(this.dir, n), { force: true })))
  }

  /** A group's backup files, newest first. */
  #backupsOf(group: string, names: string[]): string[] {
    const prefix = `${group}.`
    return names
      .filter((n) => n.startsWith(prefix) && /^\d{15}\.snap$/.test(n.slice(prefix.length)))
      .sort()
      .reverse()
  }

  /** The files of a group's backups, newest first (for tests and operators). */
  async list(group: string): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [])
    return this.#backupsOf(group, names).map((n) => path.join(this.dir, n))
  }

  /**
   * Restores the group from its newest readable backup: one whose header cannot be read (a file
   * damaged since) is passed over for the one before it.
   */
  async restore(group: Group<unknown>): Promise<BackupRestore> {
    for (const file of await this.list(group.name)) {
      const handle = await open(file, 'r').catch(() => undefined)
      if (handle === undefined) continue
      try {
        return { group: group.name, file, result: await group.restore(handle.createReadStream()) }
      } catch (err) {
        if (!(err instanceof SnapshotError)) throw err
        this.#onError(err)
      } finally {
        await handle.close().catch(() => {})
      }
    }
    return { group: group.name, file: undefined, result: undefined }
  }
}

/** fsync of a directory, so that a rename in it survives a power cut (not possible on every platform). */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  if (handle === undefined) return
  try {
    await handle.sync()
  } catch {
    // Windows cannot fsync a directory; the rename is still atomic there.
  } finally {
    await handle.close()
  }
}
