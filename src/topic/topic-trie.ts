import { StoreError, TopicTrieError } from '../errors.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { type NodeSink, StackTrie } from '../trie/stack-trie.js'
import { equalBytes, uint64BE } from '../util/bytes.js'
import { throwIfAborted } from '../util/abort.js'
import { toHex } from '../util/hex.js'
import { itemKey, type TopicMeta } from './topic-keys.js'

/**
 * A topic's trie under construction: a `StackTrie` over items `0..head` (key `uint64BE(n)`, value the item)
 * and the closed nodes it has emitted that are not yet in a store batch. `TopicStore` moves them into the
 * batch that stores the item whose insertion closed them, so a batch always carries its own nodes.
 */
export class TopicTrie {
  readonly trie: StackTrie
  private ops: BatchOp[] = []
  private opsBytes = 0

  constructor() {
    // The trie never rewrites the views it emits, so they go into the batch without a copy.
    this.trie = new StackTrie((hash, blob) => {
      this.ops.push({ type: 'put', key: hash, value: blob })
      this.opsBytes += hash.length + blob.length
    })
  }

  /** Bytes of emitted nodes not yet taken. */
  get pendingBytes(): number {
    return this.opsBytes
  }

  /** The node writes emitted since the last call, handed over to the caller. */
  take(): BatchOp[] {
    const ops = this.ops
    this.ops = []
    this.opsBytes = 0
    return ops
  }

  /**
   * Forgets emitted nodes the store already holds (while replaying stored items, or rebuilding from a synced
   * trie: the same items close the same subtries, whose nodes went out with those items the first time).
   */
  drop(): void {
    this.ops.length = 0
    this.opsBytes = 0
  }

  /** The root over the items inserted so far, with the spine nodes that make that trie whole in `ops`. */
  peekRoot(ops: BatchOp[]): Uint8Array {
    return this.trie.peekRoot((hash, blob) => ops.push({ type: 'put', key: hash, value: blob }))
  }

  /** The root over the items inserted so far, emitting nothing (for comparing against a known root). */
  rootOnly(): Uint8Array {
    return this.trie.peekRoot(discard)
  }
}

const discard: NodeSink = () => {}

/** Keys per `getMany` when reading runs of a topic's items or hashes. */
export const READ_CHUNK = 1024

/** The message of the `AbortError` a topic store operation rejects with when its signal aborts. */
export const STORE_ABORTED = 'topic store operation aborted'

/** Stored items `from..to` (inclusive) of the topic `id`, `undefined` where absent. */
export async function readItems(
  store: KVStore,
  id: Uint8Array,
  from: number,
  to: number
): Promise<(Uint8Array | undefined)[]> {
  const keys: Uint8Array[] = []
  for (let n = from; n <= to; n++) keys.push(itemKey(id, n))
  return store.getMany(keys)
}

/** The parts of a topic's state a replay needs. */
export interface ReplaySource {
  topic: string
  id: Uint8Array
  meta: TopicMeta
}

/**
 * Inserts the stored items `0..last` of a topic into `pending`, dropping the nodes they emit: those went to
 * the store with the items the first time. On passing the stored checkpoint, checks the root against it, so
 * a corrupted item is caught here rather than built on. `StoreError` when an item is missing.
 */
export async function replayItems(
  store: KVStore,
  source: ReplaySource,
  pending: TopicTrie,
  last: number,
  signal: AbortSignal | undefined
): Promise<void> {
  const { topic, id } = source
  const checkpoint = source.meta.checkpoint
  for (let from = 0; from <= last; from += READ_CHUNK) {
    throwIfAborted(signal, STORE_ABORTED)
    const values = await readItems(store, id, from, Math.min(last, from + READ_CHUNK - 1))
    for (let i = 0; i < values.length; i++) {
      const n = from + i
      const value = values[i]
      if (value === undefined) throw new StoreError(`topic ${topic}: item ${n} missing below head ${last}`)
      pending.trie.insert(uint64BE(n), value)
      if (checkpoint !== null && n === checkpoint.number && !equalBytes(pending.rootOnly(), checkpoint.root)) {
        throw new TopicTrieError(
          `topic ${topic}: stored items 0..${n} do not rebuild to checkpoint root ${toHex(checkpoint.root)}`
        )
      }
    }
    pending.drop()
  }
}
