/**
 * One RLP item read in place, with no copy: a list or a byte string, its header at `at`, its payload at
 * `[start, end)`. The hot decoders (trie nodes, contents replies) walk their input with it instead of a
 * generic decoder, which copies every list and item it passes.
 */
export interface RlpSpan {
  list: boolean
  at: number
  start: number
  end: number
}

/**
 * The item whose header is at `at` and which must end by `limit`. Canonical encodings only, as
 * `@ethereumjs/rlp` requires: no prefixed single byte below 0x80, no long form for a short length, no
 * leading zero in a length. Anything else throws `fail(why)`, so each caller reports it as its own error.
 */
export function readRlpSpan(bytes: Uint8Array, at: number, limit: number, fail: (why: string) => Error): RlpSpan {
  const span: RlpSpan = { list: false, at, start: at, end: at }
  readRlpSpanInto(span, bytes, at, limit, fail)
  return span
}

/**
 * `readRlpSpan` into a span the caller keeps and reuses, for a reader that makes no object per item (the
 * trie sync's node scan).
 */
export function readRlpSpanInto(span: RlpSpan, bytes: Uint8Array, at: number, limit: number, fail: (why: string) => Error): void {
  if (at >= limit) throw fail('an item past the end of its list')
  const b = bytes[at]!
  span.at = at
  if (b < 0x80) {
    span.list = false
    span.start = at
    span.end = at + 1
    return
  }
  let list = false
  let start: number
  let length: number
  if (b <= 0xb7) {
    start = at + 1
    length = b - 0x80
    if (length === 1 && start < limit && bytes[start]! < 0x80) throw fail('a single byte below 0x80 with a prefix')
  } else if (b <= 0xbf || b >= 0xf8) {
    list = b >= 0xf8
    const n = b - (list ? 0xf7 : 0xb7)
    if (n > 6 || at + 1 + n > limit) throw fail('a length runs past the end')
    if (bytes[at + 1] === 0) throw fail('a length with a leading zero')
    length = 0
    for (let i = 1; i <= n; i++) length = length * 256 + bytes[at + i]!
    if (length <= 55) throw fail('a long form for a short length')
    start = at + 1 + n
  } else {
    list = true
    start = at + 1
    length = b - 0xc0
  }
  const end = start + length
  if (end > limit) throw fail('an item runs past the end of its list')
  span.list = list
  span.start = start
  span.end = end
}
