/**
 * Whether the RLP in `bytes` nests lists at most `maxDepth` deep, found by walking item headers only (no
 * copies, one step per item). `@ethereumjs/rlp` copies each list's payload before decoding it, so a frame of
 * a few MB nested thousands deep costs seconds of CPU before any shape check can reject it (found by fuzzing:
 * 2 MB at 2,000 deep took about 10 s): checked first, such a frame costs one pass. Malformed headers return
 * true; the decoder then rejects them itself.
 */
export function rlpDepthWithin(bytes: Uint8Array, maxDepth: number): boolean {
  // End offsets of the lists we are inside, innermost last.
  const ends: number[] = []
  let pos = 0
  while (pos < bytes.length) {
    while (ends.length > 0 && pos >= ends[ends.length - 1]!) ends.pop()
    const b = bytes[pos]!
    let header = 1
    let length = 0
    if (b < 0x80) {
      length = 0
      header = 1
    } else if (b <= 0xb7) {
      length = b - 0x80
    } else if (b <= 0xbf) {
      const n = b - 0xb7
      header = 1 + n
      length = readLength(bytes, pos + 1, n)
    } else if (b <= 0xf7) {
      length = b - 0xc0
    } else {
      const n = b - 0xf7
      header = 1 + n
      length = readLength(bytes, pos + 1, n)
    }
    if (length < 0) return true
    if (b >= 0xc0) {
      ends.push(pos + header + length)
      if (ends.length > maxDepth) return false
      pos += header
    } else {
      pos += b < 0x80 ? 1 : header + length
    }
  }
  return true
}

/** A big-endian length of `n` bytes at `at`; -1 when it runs past the input or past 2^48. */
function readLength(bytes: Uint8Array, at: number, n: number): number {
  if (at + n > bytes.length || n > 6) return -1
  let length = 0
  for (let i = 0; i < n; i++) length = length * 256 + bytes[at + i]!
  return length
}
