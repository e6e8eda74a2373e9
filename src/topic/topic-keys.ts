import { MAX_TOPIC_BYTES } from '../constants.js'
import { InvalidInputError, StoreError } from '../errors.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { equalBytes } from '../util/bytes.js'

/**
 * Where `TopicStore` keeps a topic in a `KVStore` it shares with trie nodes (which sit under their 32-byte
 * hash). `id` is keccak256 of the topic name's UTF-8 bytes, so every topic's keys have one fixed length
 * whatever its name:
 *
 *   item n          0x69 ('i') ‖ id ‖ uint64BE(n)   41 bytes → the item's bytes
 *   item n's hash   0x68 ('h') ‖ id ‖ uint64BE(n)   41 bytes → keccak256(item)
 *   hash run r      0x67 ('g') ‖ id ‖ uint64BE(r)   41 bytes → the hashes of items r·256 .. r·256+255, in order
 *   topic meta      0x6d ('m') ‖ id                 33 bytes → `encodeMeta` below
 *   signed record   0x72 ('r') ‖ id                 33 bytes → uint64BE(number) ‖ the newest checkpoint record
 *
 * None is 32 bytes long, so no topic key can ever be taken for a trie node or shadow one. Big-endian numbers
 * keep a topic's items in order in LevelDB, next to each other.
 *
 * A hash run repeats, in one value, the hashes of `HASH_RUN` consecutive items, so that a server reads the
 * 8,192 hashes of a full hashes request in 32 reads rather than 8,192. A run is written only once its last item
 * is, in the same batch, and rewritten whenever that item is written again, so a run whose last item is at or
 * below the head is always the stored items' own; the partial run above the last full one has no key, and
 * a store written before runs existed has none: readers fall back to the per-item hashes.
 */
const ITEM_PREFIX = 0x69
const HASH_PREFIX = 0x68
const HASH_RUN_PREFIX = 0x67
const META_PREFIX = 0x6d
const RECORD_PREFIX = 0x72

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

/** keccak256 of a topic's name; throws `InvalidInputError` unless the name is 1 to `MAX_TOPIC_BYTES` bytes. */
export function topicId(topic: string): Uint8Array {
  if (typeof topic !== 'string') throw new InvalidInputError('topic must be a string')
  const bytes = textEncoder.encode(topic)
  // A lone surrogate encodes as U+FFFD, so its name would share its bytes, and its topic, with another name.
  if (textDecoder.decode(bytes) !== topic) throw new InvalidInputError('topic must be well-formed Unicode')
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) {
    throw new InvalidInputError(`topic must be 1 to ${MAX_TOPIC_BYTES} UTF-8 bytes, got ${bytes.length}`)
  }
  return keccak256(bytes)
}

export function itemKey(id: Uint8Array, n: number): Uint8Array {
  return numberedKey(ITEM_PREFIX, id, n)
}

export function hashKey(id: Uint8Array, n: number): Uint8Array {
  return numberedKey(HASH_PREFIX, id, n)
}

/** Items per hash run. */
export const HASH_RUN = 256

/** The key of hash run `run`: the hashes of items `run * HASH_RUN .. run * HASH_RUN + HASH_RUN - 1`. */
export function hashRunKey(id: Uint8Array, run: number): Uint8Array {
  return numberedKey(HASH_RUN_PREFIX, id, run)
}

export function metaKey(id: Uint8Array): Uint8Array {
  return topicKey(META_PREFIX, id)
}

export function recordKey(id: Uint8Array): Uint8Array {
  return topicKey(RECORD_PREFIX, id)
}

function topicKey(prefix: number, id: Uint8Array): Uint8Array {
  const key = new Uint8Array(33)
  key[0] = prefix
  key.set(id, 1)
  return key
}

function numberedKey(prefix: number, id: Uint8Array, n: number): Uint8Array {
  const key = new Uint8Array(41)
  key[0] = prefix
  key.set(id, 1)
  // Byte by byte rather than through a BigInt: this runs for every item read or written (n < 2^53).
  let high = Math.floor(n / 0x1_0000_0000)
  let low = n >>> 0
  for (let i = 40; i >= 37; i--, low >>>= 8) key[i] = low & 0xff
  for (let i = 36; i >= 33; i--, high >>>= 8) key[i] = high & 0xff
  return key
}

/** `(number, root)`: the topic trie's root over items `0..number`. */
export interface TopicCheckpoint {
  number: number
  root: Uint8Array
}

/** What a topic's meta record holds. `head` is -1 for a topic without items. */
export interface TopicMeta {
  lowest: number
  head: number
  /** The last recorded checkpoint, or `null` when none was. */
  checkpoint: TopicCheckpoint | null
}

/**
 * Meta layout, 57 bytes: version 1 ‖ uint64BE(lowest) ‖ uint64BE(head + 1) ‖ uint64BE(checkpoint number) ‖
 * checkpoint root. `head + 1` (the item count) so an empty topic needs no sign; a checkpoint root equal to
 * `EMPTY_ROOT` means "no checkpoint", which no real checkpoint can have since it covers at least item 0.
 */
const META_VERSION = 1
const META_BYTES = 1 + 8 + 8 + 8 + 32

export function encodeMeta(meta: TopicMeta): Uint8Array {
  const out = new Uint8Array(META_BYTES)
  const view = new DataView(out.buffer)
  out[0] = META_VERSION
  view.setBigUint64(1, BigInt(meta.lowest))
  view.setBigUint64(9, BigInt(meta.head + 1))
  view.setBigUint64(17, BigInt(meta.checkpoint?.number ?? 0))
  out.set(meta.checkpoint?.root ?? EMPTY_ROOT, 25)
  return out
}

/** Decodes a meta record; `StoreError` when it is not one this version wrote (a corrupt or foreign store). */
export function decodeMeta(bytes: Uint8Array): TopicMeta {
  if (bytes.length !== META_BYTES || bytes[0] !== META_VERSION) {
    throw new StoreError(`topic meta record of ${bytes.length} bytes, version ${bytes[0]}: not one this version wrote`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const lowest = safeNumber(view.getBigUint64(1))
  const head = safeNumber(view.getBigUint64(9)) - 1
  const number = safeNumber(view.getBigUint64(17))
  const root = bytes.slice(25, 57)
  const checkpoint = equalBytes(root, EMPTY_ROOT) ? null : { number, root }
  if (lowest > head + 1 || (checkpoint !== null && checkpoint.number > head)) {
    throw new StoreError(`topic meta record is inconsistent (lowest ${lowest}, head ${head}, checkpoint ${number})`)
  }
  return { lowest, head, checkpoint }
}

function safeNumber(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new StoreError('topic meta record holds a number past 2^53')
  return Number(value)
}
