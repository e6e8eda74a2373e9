import {
  DEFAULT_ITEM_CACHE_BYTES,
  DEFAULT_TOPIC_BATCH_BYTES,
  HASH_RUN_CACHE_BYTES,
  MAX_CACHED_ITEM_BYTES,
  MAX_CHECKPOINT_RECORD_BYTES,
  MAX_ITEM_BYTES
} from '../constants.js'
import { InvalidInputError, ItemOutOfOrderError, StoreError, TopicTrieError } from '../errors.js'
import type { Item, TopicState } from '../net/topic-protocols.js'
import { createProof } from '../proof/proof.js'
import { createRangeProof } from '../proof/range-proof.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { concatBytes, equalBytes, hashAt, uint64BE } from '../util/bytes.js'
import { throwIfAborted } from '../util/abort.js'
import { toHex } from '../util/hex.js'
import { KeyedSerial } from '../util/serial.js'
import { ItemCache } from './item-cache.js'
import type { TopicProvider } from './provider.js'
import {
  decodeMeta,
  encodeMeta,
  HASH_RUN,
  hashKey,
  hashRunKey,
  itemKey,
  metaKey,
  recordKey,
  type TopicCheckpoint,
  type TopicMeta,
  topicId
} from './topic-keys.js'
import { readTopicTrie } from './topic-adopt.js'
import { READ_CHUNK, replayItems, STORE_ABORTED, TopicTrie } from './topic-trie.js'

/** Missing hash runs written at once for reads that found them missing (each is an 8 KiB value held until written). */
const MAX_RUN_BACKFILLS = 64

export type { TopicCheckpoint } from './topic-keys.js'

export interface TopicStoreInit {
  /**
   * Bytes of items, hashes and trie nodes per store batch when many items are written at once.
   * @default DEFAULT_TOPIC_BATCH_BYTES
   */
  batchBytes?: number
  /**
   * Bytes of recently read items (each of at most `MAX_CACHED_ITEM_BYTES`) kept in memory for the next reads,
   * besides `HASH_RUN_CACHE_BYTES` of item hash runs; 0 keeps neither. @default DEFAULT_ITEM_CACHE_BYTES (16 MiB)
   */
  itemCacheBytes?: number
}

export interface TopicStoreOptions {
  signal?: AbortSignal
}

export interface PutManyOptions extends TopicStoreOptions {
  /**
   * keccak256 of each item, when the caller has just computed them (the downloader, which checked every item
   * against content hashes): stored as given instead of hashing each item again. They are what the node
   * serves as content hashes, so they must be right.
   */
  hashes?: readonly Uint8Array[]
  /**
   * The caller hands the item bytes (and `hashes`) over and never changes them afterwards, so they are stored
   * without a copy (the downloader's items: views into a reply frame nobody else holds). By default each is
   * copied first: the topic trie keeps the newest item until the next append. @default false
   */
  owned?: boolean
}

/** What `TopicStore` knows about one topic. Written only under the topic's lock. */
interface TopicEntry {
  readonly topic: string
  readonly id: Uint8Array
  /**
   * What the store holds. Replaced (never changed in place) only after the batch that wrote it succeeded,
   * so a reader that takes it without the lock sees committed state, and items up to its head are stored.
   */
  meta: TopicMeta
  /** keccak256 of item `meta.head`, when known; set together with `meta`. */
  headHash: Uint8Array | null
  /**
   * The trie over items `0..meta.head`, built on first need by replaying the stored items; `null` before
   * that, and again after a failed write, which may have left it ahead of the store.
   */
  trie: TopicTrie | null
  /** The last root whose whole trie was written, to skip rewriting its spine. */
  rootCache: TopicCheckpoint | null
  /**
   * The hashes of the items in the hash run that holds `meta.head + 1` (those up to the head), which the write
   * completing that run stores as one value; `null` until a write reads them, and after anything but a write.
   */
  openRun: Uint8Array[] | null
  /** The newest signed checkpoint record kept for the topic (`undefined`: not read from the store yet). */
  record: StoredRecord | null | undefined
  /**
   * The item cache's generation for this topic: unique over the store's life, and new whenever an item number
   * may come to hold other data (a truncate, an adoption), so nothing cached before is read again.
   */
  cacheGeneration: number
}

/** A signed checkpoint record as kept: its checkpoint number (to keep only the newest) and its bytes. */
export interface StoredRecord {
  number: number
  envelope: Uint8Array
}

/**
 * The default `TopicProvider`: many topics' items, item hashes and topic tries in one `KVStore`, beside any
 * other trie nodes (see topic-keys.ts for the key layout).
 *
 * Each topic's trie (key `uint64BE(n)`, value item n) is committed incrementally with a `StackTrie`: an item
 * goes to the store in one atomic batch with its hash, the trie nodes its insertion closed and the topic's
 * new head, so the store never holds a head past its items, nor a trie node with part of its subtrie missing.
 * `root()` and `checkpoint()` add the open spine of the current root, which makes that root's whole trie
 * stored: provable with `proveItem` and servable to a `TrieSync`. Nothing is ever deleted, so older roots
 * stay whole too. The spine of a root is a handful of nodes (about five at 100k items) that later roots
 * mostly replace, so call `root()` at checkpoint cadence rather than after every append.
 *
 * Writes to a topic (and the first build of its trie) are serialised per topic in call order; topics are
 * independent. Reads take no lock: they see the last committed state. Topic state loads on first use, with
 * no work in the constructor.
 *
 * After a restart the first write or root of a topic rebuilds its trie by replaying items `0..head` from the
 * store (the open spine of a `StackTrie` is not persisted). Measured on LevelDB, 102k items of 64-200 bytes,
 * Node 22 on a 2-vCPU container, three runs: 0.9-1.2 s (`getMany` in chunks of 1024, one insert and about
 * two node hashes per item), against 2.4 s to append them in the first place; reads never wait for it. The
 * replay also checks the items against the stored checkpoint root, so a corrupted item is caught rather than
 * built on.
 */
export class TopicStore implements TopicProvider {
  private readonly store: KVStore
  private readonly batchBytes: number
  private readonly lock = new KeyedSerial({ abortMessage: STORE_ABORTED })
  private readonly entries = new Map<string, Promise<TopicEntry>>()
  /** Hash runs being written for a read that found them missing (`backfillRun`), by topic and run. */
  private readonly backfills = new Set<string>()
  private readonly itemCache: ItemCache | undefined
  /** Recently read full hash runs (see `hashRunKey`), under the same generations as `itemCache`. */
  private readonly runCache: ItemCache | undefined
  /** The last cache generation handed out (see `TopicEntry.cacheGeneration`). */
  private generations = 0

  constructor(store: KVStore, init: TopicStoreInit = {}) {
    const batchBytes = init.batchBytes ?? DEFAULT_TOPIC_BATCH_BYTES
    if (!Number.isSafeInteger(batchBytes) || batchBytes < 1) {
      throw new InvalidInputError(`batchBytes must be a positive integer, got ${batchBytes}`)
    }
    this.store = store
    this.batchBytes = batchBytes
    const cacheBytes = init.itemCacheBytes ?? DEFAULT_ITEM_CACHE_BYTES
    if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
      throw new InvalidInputError(`itemCacheBytes must be a non-negative integer, got ${cacheBytes}`)
    }
    this.itemCache = cacheBytes > 0 ? new ItemCache(cacheBytes, MAX_CACHED_ITEM_BYTES) : undefined
    this.runCache = cacheBytes > 0 ? new ItemCache(HASH_RUN_CACHE_BYTES, HASH_RUN * 32) : undefined
  }

  /** Appends `data` as the topic's next item (0 for an empty topic) and returns its number. */
  async append(topic: string, data: Uint8Array, options?: TopicStoreOptions): Promise<number> {
    const item = checkItem(data).slice()
    return this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        const n = entry.meta.head + 1
        await this.write(entry, [item], options?.signal)
        return n
      },
      { signal: options?.signal }
    )
  }

  /**
   * Appends `datas` in order as the topic's next items, one batch per `batchBytes`, and returns the topic's
   * head afterwards (the last item's number). Every item is checked before anything is written. If a batch
   * fails or the signal aborts, the items of the earlier batches stay appended.
   */
  async appendMany(topic: string, datas: readonly Uint8Array[], options?: TopicStoreOptions): Promise<number> {
    if (!Array.isArray(datas)) throw new InvalidInputError('items must be an array of Uint8Arrays')
    const items = datas.map((d) => checkItem(d).slice())
    return this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        if (items.length > 0) await this.write(entry, items, options?.signal)
        return entry.meta.head
      },
      { signal: options?.signal }
    )
  }

  /**
   * Stores `data` as item `n`, which must be the topic's head + 1 (sync delivers items in order); any other
   * number rejects with `ItemOutOfOrderError` and writes nothing.
   */
  async put(topic: string, n: number, data: Uint8Array, options?: TopicStoreOptions): Promise<void> {
    await this.putMany(topic, n, [data], options)
  }

  /**
   * Stores `datas` as items `from, from+1, …` in one atomic batch; `from` must be the topic's head + 1 (checked
   * under the topic's lock, so a concurrent writer cannot slip in between), else `ItemOutOfOrderError` and
   * nothing is written. The downloader stores whole verified batches this way.
   */
  async putMany(topic: string, from: number, datas: readonly Uint8Array[], options?: PutManyOptions): Promise<void> {
    checkNumber(from, 'item number')
    if (!Array.isArray(datas)) throw new InvalidInputError('items must be an array of Uint8Arrays')
    const owned = options?.owned === true
    const items = owned ? datas.map(checkItem) : datas.map((d) => checkItem(d).slice())
    let hashes = options?.hashes
    if (hashes !== undefined && (hashes.length !== items.length || hashes.some((h) => !(h instanceof Uint8Array && h.length === 32)))) {
      throw new InvalidInputError('hashes must be one 32-byte hash per item')
    }
    if (hashes !== undefined && !owned) hashes = hashes.map((h) => h.slice())
    await this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        if (from !== entry.meta.head + 1) throw new ItemOutOfOrderError(entry.meta.head + 1, from)
        if (items.length > 0) await this.write(entry, items, options?.signal, hashes)
      },
      { signal: options?.signal }
    )
  }

  /**
   * Forgets items above `head` (to repair a tip that peers agree is wrong): the topic's head becomes `head`,
   * a checkpoint above it is dropped, and the trie is rebuilt from the kept items on next use. The new head
   * is written first, in one batch with the first deletions, so a crash midway leaves only unreachable items.
   */
  async truncate(topic: string, head: number, options?: TopicStoreOptions): Promise<void> {
    if (!Number.isSafeInteger(head) || head < -1) throw new InvalidInputError('head must be -1 or more')
    await this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        const old = entry.meta.head
        if (head >= old) return
        const checkpoint = entry.meta.checkpoint !== null && entry.meta.checkpoint.number > head ? null : entry.meta.checkpoint
        const meta = { ...entry.meta, head, checkpoint }
        // From the first deletion on, nothing cached for this topic is read again, even if a batch fails midway.
        entry.cacheGeneration = ++this.generations
        let ops: BatchOp[] = [metaPut(entry, meta)]
        for (let n = head + 1; n <= old; n++) {
          ops.push({ type: 'del', key: itemKey(entry.id, n) }, { type: 'del', key: hashKey(entry.id, n) })
          // The runs that ended above the new head are no longer full.
          if (n % HASH_RUN === HASH_RUN - 1) ops.push({ type: 'del', key: hashRunKey(entry.id, (n + 1) / HASH_RUN - 1) })
          if (ops.length >= 8192) {
            await this.store.batch(ops)
            ops = []
          }
        }
        if (ops.length > 0) await this.store.batch(ops)
        entry.meta = meta
        entry.headHash = null
        entry.trie = null
        entry.rootCache = null
        entry.openRun = null
        // And none of what reads cached meanwhile, under the generation above.
        entry.cacheGeneration = ++this.generations
      },
      { signal: options?.signal }
    )
  }

  /** The topic's highest item number, -1 when it has none. */
  async head(topic: string, options?: TopicStoreOptions): Promise<number> {
    throwIfAborted(options?.signal, STORE_ABORTED)
    return (await this.entry(topic, false)).meta.head
  }

  /** Item `n`, or `null` when the topic does not hold it. */
  async getItem(topic: string, n: number, options?: TopicStoreOptions): Promise<Uint8Array | null> {
    checkNumber(n, 'item number')
    throwIfAborted(options?.signal, STORE_ABORTED)
    const entry = await this.entry(topic, false)
    if (n < entry.meta.lowest || n > entry.meta.head) return null
    return (await this.store.get(itemKey(entry.id, n))) ?? null
  }

  /**
   * `root(head)`, the trie root over every item (`EMPTY_ROOT` for an empty topic). Writes the nodes of the
   * trie's open spine first, so the store then holds that root's whole trie.
   */
  async root(topic: string, options?: TopicStoreOptions): Promise<Uint8Array> {
    const signal = options?.signal
    return this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        const { root, ops } = await this.currentRoot(entry, signal)
        await this.store.batch(ops)
        entry.rootCache = { number: entry.meta.head, root }
        return root.slice()
      },
      { signal }
    )
  }

  /**
   * Records `(head, root(head))` as the topic's checkpoint (its trie written whole, as by `root()`) and
   * returns it; `null` for a topic without items, which has nothing to commit to.
   */
  async checkpoint(topic: string, options?: TopicStoreOptions): Promise<TopicCheckpoint | null> {
    const signal = options?.signal
    return this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        if (entry.meta.head < 0) return null
        const { root, ops } = await this.currentRoot(entry, signal)
        const checkpoint = { number: entry.meta.head, root }
        const meta = { ...entry.meta, checkpoint }
        ops.push(metaPut(entry, meta))
        await this.store.batch(ops)
        entry.meta = meta
        entry.rootCache = checkpoint
        return { number: checkpoint.number, root: root.slice() }
      },
      { signal }
    )
  }

  /** The last checkpoint recorded (by `checkpoint()` or `adoptTrie()`), or `null` when there is none. */
  async getCheckpoint(topic: string, options?: TopicStoreOptions): Promise<TopicCheckpoint | null> {
    throwIfAborted(options?.signal, STORE_ABORTED)
    const checkpoint = (await this.entry(topic, false)).meta.checkpoint
    return checkpoint === null ? null : { number: checkpoint.number, root: checkpoint.root.slice() }
  }

  /**
   * A Merkle proof of item `n` against `root` (default: the current root, written whole first), verifiable
   * with `verifyProof(root, uint64BE(n), proof)`. For an item the trie does not hold it proves absence.
   * Rejects with `MissingNodeError` when `root`'s trie is not in the store.
   */
  async proveItem(topic: string, n: number, root?: Uint8Array, options?: TopicStoreOptions): Promise<Uint8Array[]> {
    topicId(topic)
    checkNumber(n, 'item number')
    if (root !== undefined && !(root instanceof Uint8Array && root.length === 32)) {
      throw new InvalidInputError('root must be 32 bytes')
    }
    const at = root ?? (await this.root(topic, options))
    return createProof(this.store, at, uint64BE(n), options)
  }

  /**
   * Our state for the topic, `null` when it has no items. A topic without a checkpoint reports
   * `checkpoint: { number: 0, root: EMPTY_ROOT }`: the wire format has no "absent", and no real checkpoint
   * has the empty root, since one covers at least item 0.
   */
  async getCurrentTopicState(topic: string, options?: TopicStoreOptions): Promise<TopicState | null> {
    throwIfAborted(options?.signal, STORE_ABORTED)
    const entry = await this.entry(topic, false)
    // Taken together: both change together, after the batch that stored them.
    const { meta } = entry
    let { headHash } = entry
    if (meta.head < 0) return null
    if (headHash === null) {
      headHash = (await this.store.get(hashKey(entry.id, meta.head))) ?? null
      if (headHash === null) throw new StoreError(`topic ${topic}: hash of head item ${meta.head} missing`)
    }
    const checkpoint = meta.checkpoint ?? { number: 0, root: EMPTY_ROOT }
    const record = await this.recordOf(entry)
    const state: TopicState = {
      lowest: meta.lowest,
      head: meta.head,
      headHash: headHash.slice(),
      checkpoint: { number: checkpoint.number, root: checkpoint.root.slice() }
    }
    if (record !== null) state.record = record.envelope
    return state
  }

  /**
   * Keeps `envelope`, a signed checkpoint record for `number` that the caller verified, as the topic's newest
   * record, unless one for a number at least as high is kept already; returns whether it was kept. It is what
   * status replies hand to peers, so a late joiner learns the checkpoint from whichever peer it reaches.
   */
  async putCheckpointRecord(topic: string, record: StoredRecord, options?: TopicStoreOptions): Promise<boolean> {
    checkNumber(record.number, 'checkpoint number')
    if (!(record.envelope instanceof Uint8Array) || record.envelope.length === 0 || record.envelope.length > MAX_CHECKPOINT_RECORD_BYTES) {
      throw new InvalidInputError(`a checkpoint record must be 1 to ${MAX_CHECKPOINT_RECORD_BYTES} bytes`)
    }
    const signal = options?.signal
    return this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        const kept = await this.recordOf(entry)
        if (kept !== null && kept.number >= record.number) return false
        const value = new Uint8Array(8 + record.envelope.length)
        value.set(uint64BE(record.number))
        value.set(record.envelope, 8)
        await this.store.put(recordKey(entry.id), value)
        entry.record = { number: record.number, envelope: record.envelope.slice() }
        return true
      },
      { signal }
    )
  }

  /** The newest signed checkpoint record kept for the topic, or `null`. */
  async getCheckpointRecord(topic: string, options?: TopicStoreOptions): Promise<StoredRecord | null> {
    throwIfAborted(options?.signal, STORE_ABORTED)
    const record = await this.recordOf(await this.entry(topic, false))
    return record === null ? null : { number: record.number, envelope: record.envelope.slice() }
  }

  private async recordOf(entry: TopicEntry): Promise<StoredRecord | null> {
    if (entry.record !== undefined) return entry.record
    const value = await this.store.get(recordKey(entry.id))
    let record: StoredRecord | null = null
    if (value !== undefined) {
      if (value.length <= 8) throw new StoreError(`topic ${entry.topic}: stored checkpoint record is truncated`)
      const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
      record = { number: Number(view.getBigUint64(0)), envelope: value.slice(8) }
    }
    // A concurrent read may have filled it in; either is the stored value.
    entry.record ??= record
    return entry.record
  }

  /**
   * A range proof of items `from..to` against the topic trie at `root` (see `createRangeProof`). Rejects with
   * `MissingNodeError` when that root's trie is not in the store.
   */
  async getContentsProof(topic: string, root: Uint8Array, from: number, to: number, options?: TopicStoreOptions): Promise<Uint8Array[]> {
    topicId(topic)
    checkNumber(from, 'from')
    checkNumber(to, 'to')
    if (!(root instanceof Uint8Array && root.length === 32)) throw new InvalidInputError('root must be 32 bytes')
    return createRangeProof(this.store, root, uint64BE(from), uint64BE(to), options)
  }

  /** Items `from .. from+amount-1` that we hold, ascending; a prefix when we hold fewer (empty past the head). */
  async getContents(topic: string, from: number, amount: number, options?: TopicStoreOptions): Promise<Item[]> {
    checkNumber(from, 'from')
    checkNumber(amount, 'amount')
    const found = await this.readRun(topic, from, amount, itemKey, options?.signal, this.itemCache)
    return found.map((data, i) => ({ n: from + i, data }))
  }

  /** keccak256 of items `from .. to` (inclusive) that we hold, ascending; a prefix when we hold fewer. */
  async getContentHashes(topic: string, from: number, to: number, options?: TopicStoreOptions): Promise<Uint8Array[]> {
    checkNumber(from, 'from')
    checkNumber(to, 'to')
    if (to < from) return []
    return this.readHashes(topic, from, to - from + 1, options?.signal)
  }

  /**
   * Takes over a topic trie that a trie sync stored whole at checkpoint `(number, root)`: its leaves become
   * items `0..number`, the head becomes `number` and the checkpoint `(number, root)`, and the rebuilt trie
   * continues from there, so later appends extend that same trie.
   *
   * The leaf keys must be exactly `uint64BE(0..number)`, each item 1 to `MAX_ITEM_BYTES` bytes, the items
   * must rebuild to `root`, and items the topic already holds must be the trie's; otherwise `TopicTrieError`
   * and the topic is unchanged. When the topic already holds item `number`, nothing is read from the trie:
   * its own items must rebuild to `root`, and the checkpoint is recorded if newer. Items are written in
   * batches with the head moving only in the last one, so a crash midway leaves the topic as it was.
   */
  async adoptTrie(topic: string, root: Uint8Array, number: number, options?: TopicStoreOptions): Promise<void> {
    if (!(root instanceof Uint8Array && root.length === 32)) throw new InvalidInputError('root must be 32 bytes')
    checkNumber(number, 'checkpoint number')
    const signal = options?.signal
    await this.lock.run(
      topic,
      async () => {
        const entry = await this.entry(topic)
        try {
          if (number <= entry.meta.head) await this.confirmCheckpoint(entry, root, number, signal)
          else await this.adoptLeaves(entry, root.slice(), number, signal)
        } finally {
          // Adoption writes items above the head only, but whatever it did, nothing cached before is trusted.
          entry.cacheGeneration = ++this.generations
        }
      },
      { signal }
    )
  }

  /** Appends `items` at head + 1 onwards: one atomic batch per `batchBytes` of items, hashes, nodes and meta. */
  private async write(
    entry: TopicEntry,
    items: Uint8Array[],
    signal: AbortSignal | undefined,
    hashes?: readonly Uint8Array[]
  ): Promise<void> {
    const pending = await this.trieOf(entry, signal)
    const openRun = entry.openRun ?? (await this.readOpenRun(entry))
    entry.openRun = openRun
    let next = 0
    while (next < items.length) {
      // Checked before the chunk touches the trie: an abort leaves trie and store in step.
      throwIfAborted(signal, STORE_ABORTED)
      const ops: BatchOp[] = []
      let bytes = 0
      let head = entry.meta.head
      let headHash: Uint8Array | null = null
      const run: Uint8Array[] = (entry.openRun ?? openRun).slice()
      try {
        while (next < items.length && bytes + pending.pendingBytes < this.batchBytes) {
          const data = items[next]!
          headHash = hashes?.[next] ?? keccak256(data)
          next++
          head++
          pending.trie.insert(uint64BE(head), data)
          ops.push({ type: 'put', key: itemKey(entry.id, head), value: data })
          ops.push({ type: 'put', key: hashKey(entry.id, head), value: headHash })
          bytes += 2 * 41 + data.length + 32
          run.push(headHash)
          if (run.length === HASH_RUN) {
            ops.push({ type: 'put', key: hashRunKey(entry.id, (head + 1) / HASH_RUN - 1), value: concatBytes(...run) })
            bytes += 41 + HASH_RUN * 32
            run.length = 0
          }
        }
        const meta = { ...entry.meta, head }
        ops.push(...pending.take(), metaPut(entry, meta))
        await this.store.batch(ops)
        entry.meta = meta
        entry.headHash = headHash
        entry.openRun = run
      } catch (err) {
        // The trie may hold items the store does not: rebuild it from the store on next use.
        entry.trie = null
        entry.openRun = null
        throw err
      }
    }
  }

  /** The current root and the spine writes that make its trie whole (none when that root was written). */
  private async currentRoot(
    entry: TopicEntry,
    signal: AbortSignal | undefined
  ): Promise<{ root: Uint8Array; ops: BatchOp[] }> {
    const { head } = entry.meta
    if (head < 0) return { root: EMPTY_ROOT.slice(), ops: [] }
    if (entry.rootCache?.number === head) return { root: entry.rootCache.root, ops: [] }
    const ops: BatchOp[] = []
    const root = (await this.trieOf(entry, signal)).peekRoot(ops)
    return { root, ops }
  }

  /** The topic's trie, rebuilt from the stored items when not yet in memory. */
  private async trieOf(entry: TopicEntry, signal: AbortSignal | undefined): Promise<TopicTrie> {
    if (entry.trie !== null) return entry.trie
    const pending = new TopicTrie()
    await replayItems(this.store, entry, pending, entry.meta.head, signal)
    entry.trie = pending
    return pending
  }

  /**
   * `adoptTrie` at or below our head: our own items must rebuild to `root`. Writes that root's open spine (so
   * the checkpoint's whole trie is stored, provable and servable to trie syncs) and records the checkpoint if
   * newer. At the head this costs a handful of node hashes; below it, a replay of items `0..number`.
   */
  private async confirmCheckpoint(
    entry: TopicEntry,
    root: Uint8Array,
    number: number,
    signal: AbortSignal | undefined
  ): Promise<void> {
    let ours: Uint8Array
    let ops: BatchOp[] = []
    if (number === entry.meta.head) {
      const current = await this.currentRoot(entry, signal)
      ours = current.root
      ops = current.ops
    } else {
      const pending = new TopicTrie()
      await replayItems(this.store, entry, pending, number, signal)
      ours = pending.peekRoot(ops)
    }
    if (!equalBytes(ours, root)) {
      throw new TopicTrieError(
        `topic ${entry.topic}: our items 0..${number} have root ${toHex(ours)}, not the adopted ${toHex(root)}`
      )
    }
    const newer = entry.meta.checkpoint === null || entry.meta.checkpoint.number < number
    const meta = newer ? { ...entry.meta, checkpoint: { number, root: root.slice() } } : entry.meta
    if (newer) ops.push(metaPut(entry, meta))
    if (ops.length > 0) await this.store.batch(ops)
    entry.meta = meta
    if (number === meta.head) entry.rootCache = { number, root: root.slice() }
  }

  /** `adoptTrie` past our head: the trie's leaves become our items, and the rebuilt trie our trie. */
  private async adoptLeaves(
    entry: TopicEntry,
    root: Uint8Array,
    number: number,
    signal: AbortSignal | undefined
  ): Promise<void> {
    const adopted = await readTopicTrie(this.store, {
      id: entry.id,
      held: entry.meta.head,
      root,
      number,
      batchBytes: this.batchBytes,
      signal
    })
    throwIfAborted(signal, STORE_ABORTED)
    const checkpoint = { number, root }
    const meta = { ...entry.meta, head: number, checkpoint }
    adopted.ops.push(metaPut(entry, meta))
    await this.store.batch(adopted.ops)
    entry.meta = meta
    entry.headHash = adopted.headHash
    entry.trie = adopted.trie
    entry.rootCache = checkpoint
    entry.openRun = null
  }

  /**
   * `readRun` of item hashes, reading each full hash run the range touches as one value (see `hashRunKey`), and
   * the items' own hash keys for the open run above the last full one and for runs a store holds none of.
   */
  private async readHashes(topic: string, from: number, amount: number, signal: AbortSignal | undefined): Promise<Uint8Array[]> {
    throwIfAborted(signal, STORE_ABORTED)
    const entry = await this.entry(topic, false)
    const { meta } = entry
    if (amount === 0 || from < meta.lowest || from > meta.head) return []
    const last = from + Math.min(meta.head - from, amount - 1)
    const out: Uint8Array[] = []
    let n = from
    // Every full run (its last item at or below the head) that the range touches, read in one getMany; their
    // hashes are views into the run's value. Only the open run past the last full one is read item by item.
    const firstRun = Math.floor(from / HASH_RUN)
    const endRun = Math.min(Math.floor(last / HASH_RUN) + 1, Math.floor((meta.head + 1) / HASH_RUN))
    const runs = endRun > firstRun ? await this.readHashRuns(entry, firstRun, endRun) : []
    const perItem = async (to: number): Promise<boolean> => {
      if (to < n) return true
      const found = await this.readRun(topic, n, to - n + 1, hashKey, signal)
      out.push(...found)
      n += found.length
      return n > to
    }
    for (let i = 0; i < runs.length; i++) {
      const value = runs[i]
      const run = firstRun + i
      const end = Math.min(last, run * HASH_RUN + HASH_RUN - 1)
      if (value?.length === HASH_RUN * 32) {
        for (let k = n - run * HASH_RUN; n <= end; k++, n++) out.push(hashAt(value, k))
      } else {
        const whole = n === run * HASH_RUN && end === n + HASH_RUN - 1
        if (!(await perItem(end))) return out
        if (whole) this.backfillRun(entry, meta, run, out.slice(-HASH_RUN))
      }
    }
    await perItem(last)
    return out
  }

  /** Hash runs `firstRun .. endRun-1` of `entry`, from the run cache where it has them, else from the store. */
  private async readHashRuns(entry: TopicEntry, firstRun: number, endRun: number): Promise<(Uint8Array | undefined)[]> {
    const cache = this.runCache
    const all = numbers(firstRun, endRun)
    if (cache === undefined) return this.store.getMany(all.map((r) => hashRunKey(entry.id, r)))
    // Under the generation this read started in, as `readRun` does.
    const generation = entry.cacheGeneration
    const runs = all.map((r) => cache.get(generation, r))
    const missing = all.filter((_, i) => runs[i] === undefined)
    if (missing.length === 0) return runs
    const values = await this.store.getMany(missing.map((r) => hashRunKey(entry.id, r)))
    for (let j = 0; j < missing.length; j++) {
      const value = values[j]
      runs[missing[j]! - firstRun] = value
      if (value?.length === HASH_RUN * 32) cache.put(generation, missing[j]!, value)
    }
    return runs
  }

  /**
   * Writes hash run `run` that a read found missing (a store written before runs existed) and read item by item
   * instead, so that the next read of it is one key: under the topic's lock, and only if nothing was written,
   * truncated or adopted since the read (`meta` is replaced by each). Best effort, in the background: a run not
   * written now is written by a later read, so a failed write is dropped. At most `MAX_RUN_BACKFILLS` at once.
   */
  private backfillRun(entry: TopicEntry, meta: TopicMeta, run: number, hashes: Uint8Array[]): void {
    const key = `${entry.topic}\u0000${run}`
    if (this.backfills.has(key) || this.backfills.size >= MAX_RUN_BACKFILLS) return
    this.backfills.add(key)
    this.lock
      .run(entry.topic, async () => {
        if (entry.meta === meta) await this.store.put(hashRunKey(entry.id, run), concatBytes(...hashes))
      })
      .catch(() => undefined)
      .finally(() => this.backfills.delete(key))
  }

  /** The hashes of the items from the start of the hash run that holds `meta.head + 1` up to the head. */
  private async readOpenRun(entry: TopicEntry): Promise<Uint8Array[]> {
    const start = Math.floor((entry.meta.head + 1) / HASH_RUN) * HASH_RUN
    if (start > entry.meta.head) return []
    const found = await this.readRun(entry.topic, start, entry.meta.head - start + 1, hashKey, undefined)
    if (found.length !== entry.meta.head - start + 1) throw new StoreError(`topic ${entry.topic}: item hashes ${start}..${entry.meta.head} missing`)
    return found
  }

  /**
   * Values under `key(id, n)` for `n` in `from .. from+amount-1` within what we hold, stopping at a gap. With
   * `cache`, the values it holds are taken from it and only the others read from the store (then cached).
   */
  private async readRun(
    topic: string,
    from: number,
    amount: number,
    key: (id: Uint8Array, n: number) => Uint8Array,
    signal: AbortSignal | undefined,
    cache?: ItemCache
  ): Promise<Uint8Array[]> {
    throwIfAborted(signal, STORE_ABORTED)
    const entry = await this.entry(topic, false)
    const { id, meta, cacheGeneration: generation } = entry
    if (amount === 0 || from < meta.lowest || from > meta.head) return []
    // Written so that a huge `amount` cannot take `from + amount` past 2^53.
    const last = from + Math.min(meta.head - from, amount - 1)
    const out: Uint8Array[] = new Array(last - from + 1)
    const missing: number[] = []
    for (let n = from; n <= last; n++) {
      const cached = cache?.get(generation, n)
      if (cached === undefined) missing.push(n)
      else out[n - from] = cached
    }
    for (let i = 0; i < missing.length; i += READ_CHUNK) {
      throwIfAborted(signal, STORE_ABORTED)
      const chunk = missing.slice(i, i + READ_CHUNK)
      const values = await this.store.getMany(chunk.map((n) => key(id, n)))
      for (let j = 0; j < chunk.length; j++) {
        const value = values[j]
        // Held items are never missing; if the store lost one, what precedes it is still a valid prefix.
        if (value === undefined) return out.slice(0, chunk[j]! - from)
        out[chunk[j]! - from] = value
        // Under the generation this read started in: if a truncate or adoption came between, these may be
        // items no longer held, and nothing reads that generation again.
        cache?.put(generation, chunk[j]!, value)
      }
    }
    return out
  }

  /**
   * The topic's entry, its meta loaded from the store on first use (concurrent first uses share one load).
   * A read (`keep` false) of a topic without items or checkpoint does not keep its entry: peers name topics
   * in their requests, and a map of every name ever asked about would grow without bound. Dropping an entry
   * is always safe, because everything a write commits is in the store before the topic's lock is released,
   * so a fresh load sees it.
   */
  private async entry(topic: string, keep = true): Promise<TopicEntry> {
    let loading = this.entries.get(topic)
    if (loading === undefined) {
      const id = topicId(topic)
      const started = this.load(topic, id)
      loading = started
      this.entries.set(topic, started)
      // A failed load (store closed, corrupt meta) is not cached: the next call tries again.
      started.catch(() => {
        if (this.entries.get(topic) === started) this.entries.delete(topic)
      })
    }
    const entry = await loading
    const { meta } = entry
    if (!keep && meta.head < 0 && meta.checkpoint === null && this.entries.get(topic) === loading) {
      this.entries.delete(topic)
    }
    return entry
  }

  private async load(topic: string, id: Uint8Array): Promise<TopicEntry> {
    const stored = await this.store.get(metaKey(id))
    const meta = stored === undefined ? { lowest: 0, head: -1, checkpoint: null } : decodeMeta(stored)
    return {
      topic,
      id,
      meta,
      headHash: null,
      trie: null,
      rootCache: null,
      openRun: null,
      record: undefined,
      cacheGeneration: ++this.generations
    }
  }
}

function metaPut(entry: TopicEntry, meta: TopicMeta): BatchOp {
  return { type: 'put', key: metaKey(entry.id), value: encodeMeta(meta) }
}

function checkItem(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new InvalidInputError('item must be a Uint8Array')
  if (data.length === 0 || data.length > MAX_ITEM_BYTES) {
    throw new InvalidInputError(`item must be 1 to ${MAX_ITEM_BYTES} bytes, got ${data.length}`)
  }
  return data
}

function checkNumber(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`${what} must be a non-negative safe integer`)
}

/** `from, from + 1, .., end - 1`. */
function numbers(from: number, end: number): number[] {
  return Array.from({ length: end - from }, (_, i) => from + i)
}
