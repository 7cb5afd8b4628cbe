// Keys that some layer (URL parser, router, proxy, framing) would like to change: each must reach
// the owner's loader exactly as the caller wrote it.
export const TRICKY_KEYS: readonly string[] = [
  'a/b', '..', '.', '%2F', '%2e%2e', '?x#y', 'with spaces', ' lead and trail ', '😀 emoji', 'ü', 'a+b',
  'back\\slash', '/', '//', 'tab\there', 'line\nbreak', '~-_', "quote'\"", '&=;', '%', 'ﬁ ligature', 'null\u0000byte',
]
