import { MAX_ITEM_BYTES } from '../constants.js'
import { TopicTrieError } from '../errors.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { keccak256 } from '../trie/keccak.js'
import { trieEntries } from '../trie/walk.js'
import { concatBytes, equalBytes, uint64BE } from '../util/bytes.js'
import { throwIfAborted } from '../util/abort.js'
import { toHex } from '../util/hex.js'
import { HASH_RUN, hashKey, hashRunKey, itemKey } from './topic-keys.js'
import { READ_CHUNK, readItems, STORE_ABORTED, TopicTrie } from './topic-trie.js'

export interface ReadTopicTrieInput {
  /** The topic's id (keccak256 of its name). */
  id: Uint8Array
  /** The topic's head: items `0..held` are ours already and must equal the trie's. */
  held: number
  /** A topic trie stored whole (as a trie sync leaves it), over items `0..number`. */
  root: Uint8Array
  number: number
  /** Bytes of item writes per intermediate batch. */
  batchBytes: number
  signal: AbortSignal | undefined
}

export interface ReadTopicTrie {
  /** The rebuilt trie over items `0..number`, ready to take item `number + 1`. */
  trie: TopicTrie
  /** Writes of the last items and hashes, still to go out in one batch with the topic's new head. */
  ops: BatchOp[]
  /** keccak256 of item `number`. */
  headHash: Uint8Array
}

/**
 * Reads a synced topic trie's leaves as items for `TopicStore.adoptTrie`: the keys must be exactly
 * `uint64BE(0..number)`, every item at most `MAX_ITEM_BYTES`, items `0..held` equal to the ones the topic
 * holds, and the rebuilt trie's root `root`; otherwise `TopicTrieError` (`MissingNodeError` when the trie is
 * not stored whole). Items past `held` are written in batches as they come: invisible until the caller
 * moves the head, so a failure or crash midway changes nothing the topic shows. The trie's nodes are not
 * written again; they are the synced trie's own, already stored.
 */
export async function readTopicTrie(store: KVStore, input: ReadTopicTrieInput): Promise<ReadTopicTrie> {
  const { id, held, root, number, batchBytes, signal } = input
  const pending = new TopicTrie()
  let ops: BatchOp[] = []
  let bytes = 0
  let ours: (Uint8Array | undefined)[] = []
  let headHash: Uint8Array | null = null
  const run: Uint8Array[] = []
  let n = 0
  // Not re-hashed node by node: the root rebuilt from the leaves below must equal `root`, which checks them all.
  for await (const { key, value } of trieEntries(store, root, { signal, verify: false })) {
    if (n > number || key.length !== 8 || !equalBytes(key, uint64BE(n))) {
      throw new TopicTrieError(`trie ${toHex(root)}: key ${toHex(key)} where item ${n} of 0..${number} belongs`)
    }
    if (value.length > MAX_ITEM_BYTES) {
      throw new TopicTrieError(`trie ${toHex(root)}: item ${n} of ${value.length} bytes, above MAX_ITEM_BYTES`)
    }
    pending.trie.insert(key, value)
    pending.drop()
    headHash = keccak256(value)
    run.push(headHash)
    if (run.length === HASH_RUN) {
      // A run that ends among the held items is the store's already (or, in a store from before runs, absent).
      if (n > held) ops.push({ type: 'put', key: hashRunKey(id, (n + 1) / HASH_RUN - 1), value: concatBytes(...run) })
      run.length = 0
    }
    if (n <= held) {
      if (n % READ_CHUNK === 0) ours = await readItems(store, id, n, Math.min(held, n + READ_CHUNK - 1))
      const own = ours[n % READ_CHUNK]
      if (own === undefined || !equalBytes(own, value)) {
        throw new TopicTrieError(`trie ${toHex(root)}: item ${n} differs from the item ${n} the topic holds`)
      }
    } else {
      ops.push({ type: 'put', key: itemKey(id, n), value })
      ops.push({ type: 'put', key: hashKey(id, n), value: headHash })
      bytes += 2 * 41 + value.length + 32
      if (bytes >= batchBytes) {
        throwIfAborted(signal, STORE_ABORTED)
        await store.batch(ops)
        ops = []
        bytes = 0
      }
    }
    n++
  }
  if (n !== number + 1 || headHash === null) {
    throw new TopicTrieError(`trie ${toHex(root)} holds ${n} items, not 0..${number}`)
  }
  if (!equalBytes(pending.rootOnly(), root)) {
    throw new TopicTrieError(`trie ${toHex(root)}: its items rebuild to another root`)
  }
  return { trie: pending, ops, headHash }
}
