// The type of the `t` a subtest's callback gets, for helpers that take one (tap has no short name for it).
import type t from 'tap'

export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
