import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { InvalidInputError, UsageError } from '../errors.js'
import { keccak256 } from '../trie/keccak.js'
import { fromHex, hashFromHex } from '../util/hex.js'

/**
 * A bad value on the command line is a usage error (exit 2), unlike the same mistake inside an input file
 * (exit 1): the hex helpers throw `InvalidInputError`, re-thrown here as `UsageError`.
 */
function asUsage<T>(parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (err instanceof InvalidInputError) throw new UsageError(err.message, { cause: err })
    throw err
  }
}

/** A 32-byte hash flag such as `--root 0x…`. */
export function hashFlag(value: string, name: string): Uint8Array {
  return asUsage(() => hashFromHex(value, name))
}

/** A byte-string flag such as `--key 0x…`. */
export function bytesFlag(value: string, name: string): Uint8Array {
  return asUsage(() => fromHex(value, name))
}

/** The trie key for a user key: itself, or its keccak-256 hash under `--secure` (Ethereum's secure trie). */
export function trieKey(key: Uint8Array, secure: boolean): Uint8Array {
  return secure ? keccak256(key) : key
}

/** The shared description of `--secure`. */
export const SECURE_DESCRIPTION = 'hash keys with keccak-256 before use (Ethereum "secure trie")'
/** The shared description of `--data`. */
export const DATA_DESCRIPTION = 'store: a LevelDB directory (created if absent), or :memory:'

/** The `--data` of commands that start a node: the directory also keeps the node's key, hence its peer id. */
export const NODE_DATA_DESCRIPTION =
  'store: a LevelDB directory (created if absent), also keeping the node key node.key; or :memory: (new peer id)'

/** A `--peer` multiaddr. */
export function multiaddrFlag(value: string): Multiaddr {
  try {
    return multiaddr(value)
  } catch (err) {
    throw new UsageError(`--peer ${JSON.stringify(value)} is not a multiaddr`, { cause: err })
  }
}
