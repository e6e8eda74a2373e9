import { InvalidInputError } from '../errors.js'

const HEX_CHARS = '0123456789abcdef'
const BYTE_TO_HEX: string[] = Array.from({ length: 256 }, (_, i) => HEX_CHARS[i >> 4]! + HEX_CHARS[i & 15]!)

/** Lower-case hex with a `0x` prefix. */
export function toHex(bytes: Uint8Array): string {
  let out = '0x'
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_HEX[bytes[i]!]
  return out
}

function nibbleOf(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

/**
 * Strict hex decoding for untrusted input: an optional `0x` prefix, then an even number of hex digits.
 * `what` names the input in the error message ("key", "--root", …).
 */
export function fromHex(hex: string, what = 'hex string'): Uint8Array {
  if (typeof hex !== 'string') throw new InvalidInputError(`${what} must be a hex string`)
  const body = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex
  if (body.length % 2 !== 0) throw new InvalidInputError(`${what} has an odd number of hex digits`)
  const out = new Uint8Array(body.length / 2)
  for (let i = 0; i < out.length; i++) {
    const hi = nibbleOf(body.charCodeAt(2 * i))
    const lo = nibbleOf(body.charCodeAt(2 * i + 1))
    if (hi < 0 || lo < 0) throw new InvalidInputError(`${what} is not valid hex`)
    out[i] = (hi << 4) | lo
  }
  return out
}

/** Parse a 32-byte hash given as hex, with a clear error when it is not one. */
export function hashFromHex(hex: string, what = 'hash'): Uint8Array {
  const bytes = fromHex(hex, what)
  if (bytes.length !== 32) throw new InvalidInputError(`${what} must be 32 bytes, got ${bytes.length}`)
  return bytes
}
