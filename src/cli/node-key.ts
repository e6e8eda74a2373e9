import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { NodeKeyError } from '../errors.js'
import { MEMORY_STORE_SPEC } from '../store/open-store.js'
import { failureText } from './error-report.js'
import { readSmallFile, UnreadableFileError, writeFileAtomic } from './io.js'

/**
 * The file in a `--data` directory that holds the node's private key (libp2p's protobuf encoding). LevelDB
 * only reads and deletes files named like its own (CURRENT, LOCK, LOG*, MANIFEST-*, *.ldb, *.sst, *.log), so the key
 * lives beside the store without disturbing it, and a store copied with its directory keeps its peer id.
 */
export const NODE_KEY_FILE = 'node.key'

/**
 * Owner read and write only: whoever reads the key can act as this peer. Given when the file is created, so
 * the key is never readable by others, not even between a write and a chmod.
 */
const NODE_KEY_MODE = 0o600

/**
 * The private key a command's node runs with, from its `--data` argument: the key kept in that directory
 * (created on first use), or `undefined` for `:memory:`, where libp2p makes a new key and so a new peer id
 * each run. Commands that open the store call this after opening it: LevelDB's lock on the directory then
 * keeps two of them from creating two keys at once.
 */
export async function nodeKeyFor(data: string): Promise<PrivateKey | undefined> {
  return data === MEMORY_STORE_SPEC ? undefined : loadNodeKey(data)
}

/** Longest node key read: an RSA key of 4,096 bits is some 2.4 KB in libp2p's protobuf. */
const MAX_NODE_KEY_BYTES = 64 * 1024

/**
 * The key in `dir/node.key`. When there is none, `dir` is created if absent and a new Ed25519 key written
 * there first. Throws `NodeKeyError` when the file cannot be read or written, or does not hold a key.
 */
export async function loadNodeKey(dir: string): Promise<PrivateKey> {
  const path = join(dir, NODE_KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readSmallFile(path, MAX_NODE_KEY_BYTES)
  } catch (err) {
    if (err instanceof UnreadableFileError) throw new NodeKeyError(`the node key ${path} ${err.message}`)
    throw new NodeKeyError(`cannot read the node key ${path}: ${failureText(err)}`, { cause: err })
  }
  if (bytes === undefined) return createNodeKey(dir, path)
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    // Not replaced silently: the peer id is what others know this node by, and a new one is the user's call.
    throw new NodeKeyError(`${path} does not hold a libp2p private key (move it away to get a new peer id)`, {
      cause: err
    })
  }
}

async function createNodeKey(dir: string, path: string): Promise<PrivateKey> {
  const key = await generateKeyPair('Ed25519')
  // Written atomically, so a crash leaves no key or the whole key, never a truncated file that every later
  // start would refuse. The rename replaces a key another process made meanwhile: node commands are kept apart
  // by the store's lock (see nodeKeyFor), but a `dsfg id` at the very moment a first `serve` on the same fresh
  // directory creates its key can still print the losing id.
  try {
    await mkdir(dir, { recursive: true })
    await writeFileAtomic(path, privateKeyToProtobuf(key), NODE_KEY_MODE)
  } catch (err) {
    throw new NodeKeyError(`cannot write the node key ${path}: ${failureText(err)}`, { cause: err })
  }
  return key
}
