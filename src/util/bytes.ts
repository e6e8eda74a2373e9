import { InvalidInputError } from '../errors.js'

/** Byte-wise equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Whether the 32 bytes of `a` from `aAt` equal those of `b` from `bAt` (two hashes inside larger buffers). */
export function hashesEqualAt(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number): boolean {
  for (let i = 0; i < 32; i++) if (a[aAt + i] !== b[bAt + i]) return false
  return true
}

/** Hash `i` of `hashes` (32-byte hashes one after another), as a view. */
export function hashAt(hashes: Uint8Array, i: number): Uint8Array {
  return hashes.subarray(i * 32, i * 32 + 32)
}

/** Lexicographic comparison: negative, zero or positive, like `Array.prototype.sort` wants. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

const UINT64_END = 2n ** 64n

/**
 * 8-byte big-endian encoding of an item number (the topic trie's key): an integer from 0 to 2^64 - 1, as a number
 * or a bigint. Anything else throws `InvalidInputError`: a negative number or one past the range would wrap
 * around to another item's key (-1 to item 2^64 - 1's, 2^64 to item 0's).
 */
export function uint64BE(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8)
  if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) {
    // Byte by byte: no BigInt and no DataView on the per-item path (topic trie keys).
    let high = Math.floor(n / 0x1_0000_0000)
    let low = n >>> 0
    for (let i = 7; i >= 4; i--, low >>>= 8) out[i] = low & 0xff
    for (let i = 3; i >= 0; i--, high >>>= 8) out[i] = high & 0xff
    return out
  }
  const big = typeof n === 'bigint' ? n : Number.isInteger(n) ? BigInt(n) : -1n
  if (big < 0n || big >= UINT64_END) {
    const what = typeof n === 'number' || typeof n === 'bigint' ? `item number ${n}` : `an item number of type ${typeof n}`
    throw new InvalidInputError(`${what} is not an integer from 0 to 2^64 - 1`)
  }
  new DataView(out.buffer).setBigUint64(0, big)
  return out
}
