import { InvalidNodeError } from '../errors.js'

/**
 * A trie path as one nibble (0..15) per element. Paths are short (at most 64 nibbles for 32-byte keys, a few
 * more through storage sub-tries), so a plain `Uint8Array` per path is cheap and easy to compare.
 */
export type Nibbles = Uint8Array

export function bytesToNibbles(bytes: Uint8Array): Nibbles {
  const out = new Uint8Array(bytes.length * 2)
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = bytes[i]! >> 4
    out[2 * i + 1] = bytes[i]! & 15
  }
  return out
}

/** Packs an even-length nibble path back into bytes; `null` when the path ends half-way through a byte. */
export function nibblesToBytes(nibbles: Nibbles): Uint8Array | null {
  if (nibbles.length % 2 !== 0) return null
  const out = new Uint8Array(nibbles.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = (nibbles[2 * i]! << 4) | nibbles[2 * i + 1]!
  return out
}

export function concatNibbles(a: Nibbles, b: Nibbles): Nibbles {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

export function appendNibble(a: Nibbles, n: number): Nibbles {
  const out = new Uint8Array(a.length + 1)
  out.set(a, 0)
  out[a.length] = n
  return out
}

/** Length of the common prefix of two nibble paths. */
export function commonPrefixLength(a: Nibbles, b: Nibbles): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

/**
 * Hex-prefix ("compact") encoding of a partial path, as leaf and extension nodes store it (yellow paper,
 * appendix C): the first nibble holds the flags (2 = leaf, 1 = odd length).
 */
export function encodeCompact(nibbles: Nibbles, isLeaf: boolean): Uint8Array {
  const odd = nibbles.length % 2
  const flag = (isLeaf ? 2 : 0) + odd
  const out = new Uint8Array(Math.floor(nibbles.length / 2) + 1)
  let i = 0
  if (odd === 1) {
    out[0] = (flag << 4) | nibbles[0]!
    i = 1
  } else {
    out[0] = flag << 4
  }
  for (let j = 1; j < out.length; j++, i += 2) out[j] = (nibbles[i]! << 4) | nibbles[i + 1]!
  return out
}

/**
 * Checks the hex-prefix path at `[start, end)` of `bytes` without decoding it; whether it is a leaf's. Throws
 * `InvalidNodeError` on an empty path, a bad flag nibble or a non-zero pad nibble.
 */
export function checkCompact(bytes: Uint8Array, start: number, end: number): boolean {
  if (end === start) throw new InvalidNodeError('empty compact path')
  const flag = bytes[start]! >> 4
  if (flag > 3) throw new InvalidNodeError(`invalid compact path flag ${flag}`)
  if ((flag & 1) === 0 && (bytes[start]! & 15) !== 0) throw new InvalidNodeError('non-zero padding in compact path')
  return flag >= 2
}

/** Decodes a hex-prefix path; throws `InvalidNodeError` as `checkCompact` does. */
export function decodeCompact(encoded: Uint8Array): { path: Nibbles; isLeaf: boolean } {
  const isLeaf = checkCompact(encoded, 0, encoded.length)
  const odd = (encoded[0]! >> 4) & 1
  const length = (encoded.length - 1) * 2 + odd
  const path = new Uint8Array(length)
  let i = 0
  if (odd === 1) path[i++] = encoded[0]! & 15
  for (let j = 1; j < encoded.length; j++) {
    path[i++] = encoded[j]! >> 4
    path[i++] = encoded[j]! & 15
  }
  return { path, isLeaf }
}
