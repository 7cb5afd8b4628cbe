// Logs: what changes in the cluster as this process sees it (membership, other peers' health, leaves)
// and errors nobody else hears of, through a logger with pino's interface. Never one line per get:
// what happens per get is counted (stats, metrics), not logged.
import { InvalidOptionError } from './errors.js'
import type { HealthReason, PeerState } from './health.js'

/**
 * What peercache logs through: pino's interface, so a pino logger (or a child of one) fits as is.
 * Each call has an object of fields first, then a message. A method that throws is ignored.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

type Level = keyof Logger
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error']

/** The default: says nothing. */
export const SILENT_LOGGER: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} })

/** The `logger` option checked: undefined is the silent logger; anything without the four methods is refused. */
export function loggerOption(value: unknown): Logger {
  if (value === undefined) return SILENT_LOGGER
  const missing = LEVELS.filter((l) => typeof (value as Partial<Logger> | null)?.[l] !== 'function')
  if (missing.length > 0)
    throw new InvalidOptionError('logger', `needs pino's debug, info, warn and error methods; missing ${missing.join(', ')}`)
  return value as Logger
}

/** Writes one line; a logger that throws never breaks what peercache was doing. */
export function log(logger: Logger, level: Level, fields: Record<string, unknown>, message: string): void {
  try {
    logger[level](fields, message)
  } catch {}
}

/** Another peer changed state: down is a warning, suspect and up (back) are news. */
export function logPeerState(
  logger: Logger,
  self: string,
  change: { peer: string; from: PeerState; to: PeerState; reason: HealthReason; lastError?: string | undefined },
): void {
  const fields: Record<string, unknown> = { self, peer: change.peer, from: change.from, to: change.to, reason: change.reason }
  if (change.to === 'down' && change.lastError !== undefined) fields.lastError = change.lastError
  log(logger, change.to === 'down' ? 'warn' : 'info', fields, `peer ${change.peer} is ${change.to}`)
}

/** The member list changed (setPeers): who joined and who left; a call that changed nothing is only debug. */
export function logMembership(logger: Logger, self: string, before: readonly string[], after: readonly string[]): void {
  const joined = after.filter((p) => !before.includes(p))
  const left = before.filter((p) => !after.includes(p))
  const changed = joined.length > 0 || left.length > 0
  log(
    logger,
    changed ? 'info' : 'debug',
    { self, peers: after, joined, left },
    changed ? `membership changed: ${after.length} peers (+${joined.length} -${left.length})` : 'membership unchanged',
  )
}

/** An error's message for a log line. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
