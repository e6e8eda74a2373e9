import { InvalidInputError } from '../errors.js'

/**
 * Cheap type checks for the proof API's public boundary. Proofs arrive from untrusted peers, so a wrong type
 * must end in a typed error here rather than a `TypeError` deep inside the walk.
 */

export function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidInputError(`${what} must be a Uint8Array`)
}

export function checkHash(value: unknown, what: string): asserts value is Uint8Array {
  checkBytes(value, what)
  if (value.length !== 32) throw new InvalidInputError(`${what} must be 32 bytes, got ${value.length}`)
}

export function checkBytesArray(value: unknown, what: string): asserts value is Uint8Array[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`${what} must be an array of Uint8Array`)
  for (let i = 0; i < value.length; i++) {
    if (!(value[i] instanceof Uint8Array)) throw new InvalidInputError(`${what}[${i}] must be a Uint8Array`)
  }
}
