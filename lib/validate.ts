// Checks of what users pass in, shared by the Peer, its groups and health: each names what is wrong.
import { InvalidKeyError, InvalidOptionError } from './errors.js'

/** An integer from `min` to `max` (timeouts, counts: undici takes only integers), or InvalidOptionError naming the option. */
export function integer(option: string, n: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidOptionError(option, `must be an integer from ${min} to ${max}, got ${String(n)}`)
  }
  return n
}

/** Refuses option names that `known` does not hold (a typo would otherwise silently keep a default). */
export function knownOptions(what: string, options: object, known: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new InvalidOptionError(name, `${what} has no option "${name}"; it has ${known.join(', ')}`)
  }
}

/** A boolean, or InvalidOptionError naming the option (a string "false" would otherwise turn a feature on). */
export function flag(option: string, b: unknown): boolean {
  if (typeof b !== 'boolean') throw new InvalidOptionError(option, `must be true or false, got ${String(b)}`)
  return b
}

/** A finite number > 0, or InvalidOptionError naming the option. */
export function positive(option: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0)
    throw new InvalidOptionError(option, `must be a positive number, got ${String(n)}`)
  return n
}

/** A finite number ≥ 0, or InvalidOptionError naming the option. */
export function nonNegative(option: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidOptionError(option, `must be a number ≥ 0, got ${String(n)}`)
  return n
}

/** A key is a non-empty, well-formed string of at most `maxKeyBytes` bytes of UTF-8. */
export function checkKey(group: string, key: unknown, maxKeyBytes: number): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(group, key, 'keys are strings')
  if (key.length === 0) throw new InvalidKeyError(group, key, 'keys are not empty')
  // A UTF-16 code unit is at most 3 UTF-8 bytes: only long keys need measuring.
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key) > maxKeyBytes) {
    throw new InvalidKeyError(group, key, `keys are at most ${maxKeyBytes} bytes of UTF-8`)
  }
  if (!(key as unknown as { isWellFormed(): boolean }).isWellFormed())
    throw new InvalidKeyError(group, key, 'keys are well-formed Unicode (no lone surrogate)')
}

/** The options that were given a value: spread over a defaults object, an explicit `undefined` (or null) keeps the default. */
export function definedOnly<O extends object>(options: O): Partial<O> {
  const out: Partial<O> = {}
  for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v
  return out
}
