import { BREADTH_FIRST_BELOW_REQUESTS, MAX_FETCHES_PER_DEPTH } from '../constants.js'
import { AlreadyProcessedError, InvalidNodeError, NotRequestedError } from '../errors.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { keccak256Into } from '../trie/keccak-wasm.js'
import { type Nibbles, nibblesToBytes } from '../trie/nibbles.js'
import { decodeNode, type NodeLeaf, NodeScan, nodeChildren, scanNode } from '../trie/node.js'
import { rebuildSubtrie, type SubtrieLeaves } from '../trie/subtrie.js'
import { equalBytes, hashAt } from '../util/bytes.js'
import { HashFilter } from '../util/hash-filter.js'
import { toHex } from '../util/hex.js'
import { type Log, silentLog } from '../util/log.js'
import { DepthQueue } from './depth-queue.js'
import { COMPLETE, COUNTED, DEAD, QUEUED, REPORT_LEAVES, RequestTable } from './request-table.js'

// reference: go-ethereum@02b73d4e trie/sync.go (scheduler), with the hash-keyed multi-parent requests of
// go-ethereum v1.9.25 because DSFG fetches nodes by hash (`/dsfg/nodes/1.0.0`), not by path.

/**
 * Called for every value found in a processed node of the main trie (including values inside embedded
 * children). It may return the roots of further tries hanging off this leaf (as an Ethereum account leaf
 * names its storage trie); those are synced too, and the node holding the leaf is committed only after them.
 * Leaves of such sub-tries are not reported. Values at an odd nibble depth have no byte key and are skipped.
 * Nodes are scheduled by hash, once: a node that is in a sub-trie and in the main trie too (the same bytes under
 * both) is synced at the place of the parent that named it first, so its leaves are reported only if that was
 * the main trie's. Ethereum's state holds no such node; a trie built to have one gets its leaves reported
 * depending on the order of delivery.
 */
export type LeafCallback = (
  key: Uint8Array,
  value: Uint8Array,
  path: Nibbles
) => Iterable<Uint8Array> | undefined | Promise<Iterable<Uint8Array> | undefined>

export interface TrieSyncInit {
  onLeaf?: LeafCallback
  /**
   * Most requests of one depth handed out by `missing` and not yet committed.
   * @default MAX_FETCHES_PER_DEPTH (16384)
   */
  maxFetchesPerDepth?: number
  /**
   * While fewer requests than this are held (scheduled and not yet committed), `missing` hands out the
   * shallowest nodes first; past it, the deepest. @default BREADTH_FIRST_BELOW_REQUESTS
   */
  breadthFirstBelow?: number
  /** Where the scheduler logs its store writes (the state syncer hands it `dsfg:state-sync:trie`). @default silentLog */
  log?: Log
}

const hashed: unique symbol = Symbol('dsfg.hashed')

/**
 * A node blob with its keccak-256, made by `hashBlob` (the only way to make one, so its hash can be trusted).
 * A caller that has hashed a blob anyway, as `StateSyncer` does to match a reply against its request, hands
 * this to `processMany` so the blob is not hashed a second time.
 */
export interface HashedBlob {
  readonly hash: Uint8Array
  readonly blob: Uint8Array
  /** For the root of a subtrie rebuilt from its leaves (`hashSubtrie`): every other node of it. */
  readonly below?: SubtrieNodes
  readonly [hashed]: true
}

/** The nodes of a subtrie below its root, stored under their hashes, and the bytes of all of them, the root's included. */
export interface SubtrieNodes {
  readonly hashes: Uint8Array[]
  readonly blobs: Uint8Array[]
  readonly bytes: number
}

/**
 * Rebuilds the subtrie a peer sent as its leaves and hashes its nodes (`rebuildSubtrie`): its root, for
 * `processMany`, which takes the whole subtrie at once in place of the root node. Throws `ProtocolError` for
 * leaves no subtrie has (out of order, malformed); whether the root is one asked for is `processMany`'s check.
 */
export function hashSubtrie(leaves: SubtrieLeaves): HashedBlob {
  const { hash, blob, hashes, blobs, bytes } = rebuildSubtrie(leaves.frame, leaves.start, leaves.end)
  return { hash, blob, below: { hashes, blobs, bytes }, [hashed]: true }
}

/** Hashes `blob` once, for `processMany`. */
export function hashBlob(blob: Uint8Array): HashedBlob {
  return { hash: keccak256(blob), blob, [hashed]: true }
}

/** `hashBlob` of each of `blobs`, their hashes views into one buffer (a reply's worth of 32-byte arrays made less garbage). */
export function hashBlobs(blobs: Uint8Array[]): HashedBlob[] {
  const hashes = new Uint8Array(blobs.length * 32)
  const out: HashedBlob[] = new Array(blobs.length)
  for (let i = 0; i < blobs.length; i++) {
    keccak256Into(blobs[i]!, hashes, i * 32)
    out[i] = { hash: hashAt(hashes, i), blob: blobs[i]!, [hashed]: true }
  }
  return out
}

/** The blob and its hash, computing the hash only for a bare blob (a forged `HashedBlob` is re-hashed). */
function blobAndHash(node: Uint8Array | HashedBlob): HashedBlob {
  if (node instanceof Uint8Array) return hashBlob(node)
  // A forged one is taken as its root node alone.
  return node[hashed] === true ? node : hashBlob(node.blob)
}

/** What `processMany` says about each blob, in input order. */
export type ProcessResult =
  | { ok: true; hash: Uint8Array }
  | { ok: false; hash: Uint8Array; error: NotRequestedError | AlreadyProcessedError | InvalidNodeError }

/**
 * The trie sync scheduler: which node hashes to fetch next, how delivered nodes unblock their parents, and
 * when a node may be written. A node reaches the store only when its whole subtrie is there, so at every
 * moment a stored node means a complete subtrie: an interrupted sync, a restart or a new root simply skips
 * what is stored. Pure apart from reads of the store it was given; no timers, no network.
 */
export class TrieSync {
  readonly root: Uint8Array
  private readonly store: KVStore
  private readonly onLeaf: LeafCallback | undefined
  private readonly maxFetchesPerDepth: number
  private readonly breadthFirstBelow: number
  private readonly log: Log
  /**
   * Every request not yet committed, complete ones included: one look-up tells a child that is scheduled from
   * one that only waits to be written. A request is its slot in the table.
   */
  private readonly requests = new RequestTable()
  private readonly queue = new DepthQueue(this.requests)
  /** Requests handed out by `missing` and not yet committed, by depth. */
  private readonly fetches: number[] = []
  /** Complete requests (slots) not yet written, in completion order. */
  private membatch: number[] = []
  private membatchBytes = 0
  /** The nodes below the subtries accepted whole (`hashSubtrie`) and not yet written: their hashes, then blobs. */
  private belowHashes: Uint8Array[] = []
  private belowBlobs: Uint8Array[] = []
  /**
   * The buffers the write batch's nodes are views into (their replies), each counted whole in `membatchBytes`
   * once: a leaf keeps its whole reply until the commit, and one leaf a reply would otherwise hold many
   * replies of copied branch nodes without a commit coming due.
   */
  private pinned = new Set<ArrayBufferLike>()
  /**
   * Set by `open` when the store held nothing: every node this sync committed, so a child is looked up in the
   * store only when it may be one of them (a subtrie met twice). Null: every unknown child is looked up.
   */
  private written: HashFilter | null = null
  /** Reused by every node `processMany` scans (all but those whose leaves go to `onLeaf`). */
  private readonly scan = new NodeScan()
  /** The nodes one `processMany` call accepts, and their children; reused from call to call. */
  private readonly batch = new Batch()
  /** Serialises `process*` and `commit`: each reads the store and must see the others' effects. */
  private lock: Promise<unknown> = Promise.resolve()

  /**
   * Starts a sync of `root` into `store`. The root is scheduled even if the store has it already (checking
   * would need I/O); `TrieSync.open` checks first and schedules nothing for a stored root.
   */
  constructor(root: Uint8Array, store: KVStore, init: TrieSyncInit = {}) {
    if (!(root instanceof Uint8Array) || root.length !== 32) {
      throw new InvalidNodeError('trie root must be a 32-byte hash')
    }
    this.root = root.slice()
    this.store = store
    this.onLeaf = init.onLeaf
    this.maxFetchesPerDepth = init.maxFetchesPerDepth ?? MAX_FETCHES_PER_DEPTH
    this.breadthFirstBelow = init.breadthFirstBelow ?? BREADTH_FIRST_BELOW_REQUESTS
    this.log = init.log ?? silentLog
    if (!equalBytes(this.root, EMPTY_ROOT)) this.schedule(this.root, new Uint8Array(0), -1, REPORT_LEAVES)
  }

  /**
   * Like the constructor, but schedules nothing when the store already holds the root (so the whole trie). In a
   * store that holds nothing yet (`KVStore.holdsNothing`), only nodes this sync may have written are looked up
   * (a filter of them answers the rest) instead of a database read for every child (4-7 µs each of a freshly
   * written LevelDB, in a micro-benchmark; in whole syncs the saving was within the noise of the client's CPU
   * per node). A node another writer puts in the store meanwhile is then not seen, and fetched again: that
   * costs its transfer, never a wrong result (and if no peer has it, the sync fails as unavailable instead of
   * skipping it).
   */
  static async open(root: Uint8Array, store: KVStore, init: TrieSyncInit = {}): Promise<TrieSync> {
    const sync = new TrieSync(root, store, init)
    if (sync.requests.size === 0) return sync
    if ((await store.holdsNothing?.()) === true) {
      sync.written = new HashFilter()
      sync.log('the store holds nothing: only nodes this sync wrote are looked up')
    } else if ((await store.get(sync.root)) !== undefined) {
      sync.requests.clear()
      sync.queue.clear()
      sync.log('root %s is stored already: nothing to sync', toHex(sync.root))
    }
    return sync
  }

  /**
   * Whether the store held nothing when the sync opened (`open`): a node's whole subtrie may then be asked for
   * (as its leaves, `hashSubtrie`) with nothing of it stored already.
   */
  get fresh(): boolean {
    return this.written !== null
  }

  /** Nodes requested or waiting on children and not yet committed. Zero means the sync is complete. */
  get pending(): number {
    return this.requests.size - this.membatch.length
  }

  /**
   * Nodes known to be missing and not yet handed out by `missing()`: what could be asked for now. An upper bound
   * (nodes delivered before `missing` reached them are dropped from the queue lazily).
   */
  get queued(): number {
    return this.queue.size
  }

  /** Whether `hash` is scheduled and still waiting for its node (so a delivery of it would be accepted). */
  isPending(hash: Uint8Array): boolean {
    return hash.length === 32 && this.isPendingAt(hash, 0)
  }

  /** `isPending` of the 32 bytes of `bytes` from `at`. */
  isPendingAt(bytes: Uint8Array, at: number): boolean {
    const slot = this.requests.findAt(bytes, at)
    return slot >= 0 && this.requests.data[slot] === null
  }

  /** The depth (nibbles from the root) of the node whose hash is the 32 bytes of `bytes` from `at`; -1 when it is not scheduled. */
  depthAt(bytes: Uint8Array, at: number): number {
    const slot = this.requests.findAt(bytes, at)
    return slot < 0 ? -1 : this.requests.depth[slot]!
  }

  /** Bytes held for `commit()`: the completed nodes, and the whole of any buffer (reply) they are views into. */
  get memSize(): number {
    return this.membatchBytes
  }

  /**
   * Up to `max` node hashes to fetch now (0 = no limit): the shallowest first while fewer than
   * `breadthFirstBelow` requests are held, else the deepest first. A hash is handed out once; the caller keeps
   * it until its node is delivered (re-sending it to another peer if needed). A depth with
   * `maxFetchesPerDepth` nodes out and uncommitted gives none: deepest first, the hand-out stops there.
   * The hashes of one call are views into one buffer of their own (cheaper than an array each): copy one
   * (`slice()`) before handing its `.buffer` elsewhere, as a transfer to a worker would detach them all.
   */
  missing(max: number): Uint8Array[] {
    return this.requests.hashesOf(this.takeMissing(max))
  }

  /**
   * `missing`, as one buffer of the hashes one after another (32 bytes each): no array per hash, for a caller
   * that holds them until their nodes come (`StateSyncer`).
   */
  missingHashes(max: number): Uint8Array {
    return this.requests.copyHashes(this.takeMissing(max))
  }

  /** The slots `missing` hands out. */
  private takeMissing(max: number): number[] {
    return this.requests.size < this.breadthFirstBelow ? this.shallowestMissing(max) : this.deepestMissing(max)
  }

  /**
   * Shallowest first: each level is asked for whole before the one below it, so the nodes left at the end are
   * many and known early. Deepest first leaves the last subtries' levels to be found one round trip after
   * another: over 80 ms links the last second of a 100k-key sync moved a fifth of what the links carry.
   */
  private shallowestMissing(max: number): number[] {
    const out: number[] = []
    const deepest = this.queue.maxDepth
    const data = this.requests.data
    for (let depth = 0; depth <= deepest && (max === 0 || out.length < max); depth++) {
      for (let req = this.queue.peekAt(depth); req !== undefined && (max === 0 || out.length < max); req = this.queue.peekAt(depth)) {
        if (data[req] !== null || (this.requests.flags[req]! & DEAD) !== 0) {
          this.dequeue(this.queue.popAt(depth)!)
          continue
        }
        const fetched = this.fetches[depth] ?? 0
        if (fetched >= this.maxFetchesPerDepth) break
        this.dequeue(this.queue.popAt(depth)!)
        out.push(this.handOut(req, depth))
      }
    }
    return out
  }

  /** A slot the queue let go of: no longer queued, and freed if its request was removed meanwhile. */
  private dequeue(slot: number): void {
    const requests = this.requests
    if ((requests.flags[slot]! & DEAD) !== 0) requests.release(slot)
    else requests.flags[slot]! &= ~QUEUED
  }

  /**
   * Counts `req` against its depth until commit; returns it. Its hash goes out as a copy (`hashesOf`): the
   * slot is reused after the commit.
   */
  private handOut(req: number, depth: number): number {
    this.fetches[depth] = (this.fetches[depth] ?? 0) + 1
    this.requests.flags[req]! |= COUNTED
    return req
  }

  private deepestMissing(max: number): number[] {
    const out: number[] = []
    const data = this.requests.data
    while (max === 0 || out.length < max) {
      const req = this.queue.peek()
      if (req === undefined) break
      // Requests delivered before `missing` reached them (any pending hash is accepted) are dropped lazily; a
      // request leaves `requests` only once complete, so it has its data by then.
      if (data[req] !== null || (this.requests.flags[req]! & DEAD) !== 0) {
        this.dequeue(this.queue.pop()!)
        continue
      }
      const depth = this.requests.depth[req]!
      if ((this.fetches[depth] ?? 0) >= this.maxFetchesPerDepth) break
      this.dequeue(this.queue.pop()!)
      out.push(this.handOut(req, depth))
    }
    return out
  }

  /** Accepts one delivered node blob; rejects with the error `processMany` would report for it. */
  async process(node: Uint8Array | HashedBlob): Promise<void> {
    const [result] = await this.processMany([node])
    if (result !== undefined && !result.ok) throw result.error
  }

  /**
   * Accepts delivered node blobs in any order, hashing each itself (unless it comes as a `HashedBlob`), with
   * one store look-up for all their unknown children. A blob nobody asked for, one already delivered, or one
   * that is not a valid node is reported in its result and changes nothing. A blob may be a view into a larger
   * buffer (a reply): a node that waits for its children is copied, a complete one is kept as it is until the
   * next `commit()`, so the caller must not change the bytes before then.
   */
  processMany(nodes: (Uint8Array | HashedBlob)[]): Promise<ProcessResult[]> {
    return this.exclusive(() => this.processLocked(nodes))
  }

  /** Writes every completed node to the store in one batch; returns how many. */
  commit(): Promise<number> {
    return this.exclusive(async () => {
      const done = this.membatch
      const belowHashes = this.belowHashes
      if (done.length === 0 && belowHashes.length === 0) return 0
      await this.write(done)
      const requests = this.requests
      const written = this.written
      for (let i = 0; i < done.length; i++) {
        if (written !== null) requests.addHashTo(written, done[i]!)
        requests.remove(done[i]!)
      }
      // The nodes below whole subtries are left out of `written`: only a trie holding one subtrie twice, one copy
      // asked for node by node, would look one of them up, and it then fetches it again (a transfer, never a
      // wrong result); adding them cost 1.5% of a sync's CPU.
      this.membatch = []
      this.belowHashes = []
      this.belowBlobs = []
      this.log('stored %d nodes (%d bytes), %d pending', done.length + belowHashes.length, this.membatchBytes, this.pending)
      this.membatchBytes = 0
      this.pinned.clear()
      return done.length + belowHashes.length
    })
  }

  /**
   * Hands the nodes of `slots` to the store in one batch. Not async, and nothing here keeps the operations:
   * while the database writes (milliseconds on its own thread), an object and a key view per node held here
   * outlived a garbage collection or two, and a sync's worth of them was an eighth of what it promoted.
   */
  private write(slots: number[]): Promise<void> {
    return this.store.batch(putOps(this.requests, slots, this.belowHashes, this.belowBlobs))
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn)
    this.lock = run.catch(() => undefined)
    return run
  }

  /**
   * In steps, so the hot ones are small synchronous functions (a single async one took TurboFan 35-80 ms to
   * compile, three times over as its rarer paths first ran): the nodes whose leaves go to nobody are checked
   * and scanned (`acceptScanned`), each one whose leaves go to `onLeaf` decoded and reported (`acceptReporting`),
   * in the order given, as a node met twice is scheduled from the first parent that names it; then, after one
   * store look-up for the children nothing is known of, every accepted node's children are scheduled
   * (`scheduleChildren`).
   */
  private async processLocked(nodes: (Uint8Array | HashedBlob)[]): Promise<ProcessResult[]> {
    const results: ProcessResult[] = new Array(nodes.length)
    const batch = this.batch
    batch.clear()
    try {
      for (let n = this.acceptScanned(nodes, 0, results, batch); n < nodes.length; n = this.acceptScanned(nodes, n + 1, results, batch)) {
        await this.acceptReporting(nodes[n]!, n, results, batch)
      }
      const stored = await this.storedChildren(batch)
      this.scheduleChildren(batch, stored)
      return results
    } finally {
      batch.clear()
    }
  }

  /**
   * Accepts `nodes` from `from` on into `batch`, and reports the results of those it refuses, up to the first
   * whose leaves go to `onLeaf`; returns that one's index (`nodes.length` if none), for `acceptReporting`.
   */
  private acceptScanned(nodes: (Uint8Array | HashedBlob)[], from: number, results: ProcessResult[], batch: Batch): number {
    const requests = this.requests
    const data = requests.data
    const scan = this.scan
    for (let n = from; n < nodes.length; n++) {
      const { hash, blob: delivered, below } = blobAndHash(nodes[n]!)
      const req = requests.find(hash)
      const notRequested = req < 0 || (requests.flags[req]! & COMPLETE) !== 0
      if (notRequested || data[req] !== null) {
        results[n] = refusal(hash, notRequested)
        continue
      }
      if ((requests.flags[req]! & REPORT_LEAVES) !== 0 && this.onLeaf !== undefined) return n
      const first = batch.size
      if (below !== undefined) {
        // A whole subtrie, rebuilt from its leaves and found under this hash: complete, with no child to fetch.
        this.keepBelow(below)
        data[req] = delivered
        results[n] = { ok: true, hash }
        batch.accept(req, first, first, requests)
        continue
      }
      // The blob may be a view into a whole reply (`decodeNodesResponse`): a node with children outlives this call
      // waiting for them, and keeps its own copy. A complete one is written as it is (pinning the reply) at the
      // next commit.
      let blob = delivered
      let count: number
      try {
        count = scanNode(delivered, scan)
      } catch (err) {
        results[n] = invalid(hash, err)
        continue
      }
      if (count > 0) {
        blob = new Uint8Array(delivered) // not `slice()`: on a Node `Buffer` it is a view
        for (let k = 0; k < count; k++) {
          const nibble = scan.nibble[k]!
          // A branch's child is scheduled at its parent's path and nibble; an extension's needs its own path.
          if (nibble >= 0) batch.pushChild(blob, scan.hashAt[k]!, nibble)
          else batch.pushChildAt(blob.subarray(scan.hashAt[k]!, scan.hashAt[k]! + 32), scan.childPath(blob, k, requests.pathOf(req)))
        }
      }
      data[req] = blob
      results[n] = { ok: true, hash }
      batch.accept(req, batch.size, first, requests)
    }
    return nodes.length
  }

  /**
   * Holds the nodes below an accepted subtrie for the next commit, counting them and the buffers they are views
   * into in `memSize` (as `completed` counts a node's).
   */
  private keepBelow(below: SubtrieNodes): void {
    const { hashes, blobs } = below
    let last: ArrayBufferLike | null = null
    for (let i = 0; i < hashes.length; i++) {
      this.belowHashes.push(hashes[i]!)
      const blob = blobs[i]!
      this.belowBlobs.push(blob)
      this.membatchBytes += 32 + blob.length
      // Mostly one buffer after another (the slab the subtrie was built in).
      if (blob.buffer !== last) this.pin(blob)
      last = blob.buffer
    }
  }

  /** Counts the whole buffer `blob` is a view into in `memSize`, once until the commit: the write holds all of it. */
  private pin(blob: Uint8Array): void {
    if (blob.byteLength === blob.buffer.byteLength || this.pinned.has(blob.buffer)) return
    this.pinned.add(blob.buffer)
    this.membatchBytes += blob.buffer.byteLength
  }

  /** Accepts `node` (`nodes[n]`, pending, its leaves going to `onLeaf`): decodes it, and reports its leaves. */
  private async acceptReporting(node: Uint8Array | HashedBlob, n: number, results: ProcessResult[], batch: Batch): Promise<void> {
    const requests = this.requests
    const data = requests.data
    const { hash, blob: delivered } = blobAndHash(node)
    const req = requests.find(hash)
    const first = batch.size
    // What outlives this call keeps the node's own copy: its children's hashes, and the leaves' values `onLeaf`
    // may keep.
    const blob = new Uint8Array(delivered)
    let leaves: NodeLeaf[]
    try {
      // The path a copy too: leaves' paths may be it, and `onLeaf` may keep them.
      const decoded = nodeChildren(decodeNode(blob), requests.pathOf(req).slice(), true)
      for (const c of decoded.children) batch.pushChildAt(c.hash, c.path)
      leaves = decoded.leaves
    } catch (err) {
      batch.truncate(first)
      results[n] = invalid(hash, err)
      return
    }
    const own = batch.size
    try {
      await this.reportLeaves(leaves, batch)
    } catch (err) {
      // Nothing has been scheduled yet: forget this call's deliveries so they can be processed again.
      for (const a of batch.accepted) data[a] = null
      throw err
    }
    data[req] = blob
    results[n] = { ok: true, hash }
    batch.accept(req, own, first, requests)
  }

  /** Which of `batch`'s unknown children the store holds (by index in `batch`): a stored node means its subtrie is complete. */
  private async storedChildren(batch: Batch): Promise<Set<number> | null> {
    const written = this.written
    const unknown = batch.unknown
    const lookUp = written === null ? unknown : unknown.filter((i) => written.mayHoldAt(batch.bytes[i]!, batch.at[i]!))
    if (lookUp.length === 0) return null
    // One round trip for all of them.
    const values = await this.store.getMany(lookUp.map((i) => batch.hash(i)))
    let stored: Set<number> | null = null
    for (let i = 0; i < values.length; i++) {
      if (values[i] === undefined) continue
      stored ??= new Set()
      stored.add(lookUp[i]!)
    }
    return stored
  }

  /** Schedules the children of `batch`'s accepted nodes that are neither scheduled nor `stored`, and completes any node that has none. */
  private scheduleChildren(batch: Batch, stored: Set<number> | null): void {
    const requests = this.requests
    for (let a = 0, i = 0; a < batch.accepted.length; a++) {
      const req = batch.accepted[a]!
      const own = batch.ownEnd[a]!
      const reportLeaves = requests.flags[req]! & REPORT_LEAVES
      for (const end = batch.childrenEnd[a]!; i < end; i++) {
        const bytes = batch.bytes[i]!
        const at = batch.at[i]!
        const existing = requests.findAt(bytes, at)
        if (existing >= 0) {
          if ((requests.flags[existing]! & COMPLETE) !== 0) continue
          requests.addParent(existing, req)
        } else if (stored?.has(i) === true) {
          continue
        } else {
          // Inside a sub-trie, and at the root of one `onLeaf` named, leaves are not reported.
          const flags = (i < own ? reportLeaves : 0) | QUEUED
          const nibble = batch.nibble[i]!
          const slot = nibble >= 0 ? requests.addBelow(bytes, at, req, nibble, flags) : requests.add(bytes, at, batch.paths[i]!, req, flags)
          this.queue.push(slot)
        }
        requests.deps[req]!++
      }
      if (requests.deps[req] === 0) this.completed(req)
    }
  }

  /** Reports `leaves` to `onLeaf` and appends the sub-trie roots it names to the children. */
  private async reportLeaves(leaves: NodeLeaf[], batch: Batch): Promise<void> {
    for (const leaf of leaves) {
      const leafKey = nibblesToBytes(leaf.path)
      if (leafKey === null) continue
      const roots = await this.onLeaf!(leafKey, leaf.value, leaf.path)
      if (roots == null) continue
      for (const root of roots) {
        if (!(root instanceof Uint8Array) || root.length !== 32) {
          throw new InvalidNodeError('onLeaf returned a sub-trie root that is not a 32-byte hash')
        }
        if (equalBytes(root, EMPTY_ROOT)) continue
        batch.pushChildAt(root, leaf.path)
      }
    }
  }

  private schedule(hash: Uint8Array, path: Nibbles, parent: number, flags: number): void {
    this.queue.push(this.requests.add(hash, 0, path, parent, flags | QUEUED))
  }

  /** Moves a request whose subtrie is complete into the write batch, then any parent this completes. */
  private completed(first: number): void {
    const requests = this.requests
    const stack = [first]
    while (stack.length > 0) {
      const req = stack.pop()!
      requests.flags[req]! |= COMPLETE
      this.membatch.push(req)
      const data = requests.data[req]!
      this.membatchBytes += 32 + data.length
      this.pin(data)
      if ((requests.flags[req]! & COUNTED) !== 0) this.fetches[requests.depth[req]!]!--
      const parent = requests.parent[req]!
      if (parent >= 0 && --requests.deps[parent]! === 0) stack.push(parent)
      const more = requests.moreParents.get(req)
      if (more !== undefined) {
        for (const p of more) if (--requests.deps[p]! === 0) stack.push(p)
      }
    }
  }
}

/**
 * The store writes of the nodes of `slots`. Apart from `write`: with the loop in it, `write` was compiled on the
 * stack (OSR) with the store's `batch` inlined while that had run too few times to have type feedback, and its
 * compiled code was thrown away again at the next commit.
 */
function putOps(requests: RequestTable, slots: number[], belowHashes: Uint8Array[], belowBlobs: Uint8Array[]): BatchOp[] {
  const keys = requests.copyHashes(slots)
  const ops: BatchOp[] = new Array(slots.length + belowHashes.length)
  for (let i = 0; i < slots.length; i++) ops[i] = { type: 'put', key: hashAt(keys, i), value: requests.data[slots[i]!]! }
  for (let i = 0; i < belowHashes.length; i++) ops[slots.length + i] = { type: 'put', key: belowHashes[i]!, value: belowBlobs[i]! }
  return ops
}

/** What `processMany` reports for a blob not waited for: one nobody asked for (or complete already), or one delivered already. */
function refusal(hash: Uint8Array, notRequested: boolean): ProcessResult {
  if (notRequested) return { ok: false, hash, error: new NotRequestedError(`node ${toHex(hash)} was not requested`) }
  return { ok: false, hash, error: new AlreadyProcessedError(`node ${toHex(hash)} was already processed`) }
}

function invalid(hash: Uint8Array, err: unknown): ProcessResult {
  const error = err instanceof InvalidNodeError ? err : new InvalidNodeError(`node ${toHex(hash)}: invalid`, { cause: err })
  return { ok: false, hash, error }
}

/** `Batch.nibble` of a child whose path is in `Batch.paths`. */
const AT_PATH = -1

/**
 * The nodes one `processMany` call accepts and their children, as columns rather than an object per child.
 * Accepted node `a` (slot `accepted[a]`) has children `childrenEnd[a - 1]` (0 for the first) to
 * `childrenEnd[a]`: its own (hash-referenced) ones up to `ownEnd[a]`, then the sub-trie roots `onLeaf` named.
 * Child `i`'s hash is the 32 bytes of `bytes[i]` from `at[i]` (mostly its parent's own blob: no view per
 * child), and its path the parent's and nibble `nibble[i]` (a branch's child) or `paths[i]`. `unknown`: the
 * children neither scheduled nor complete, to look up in the store (a child named twice is looked up twice).
 */
class Batch {
  readonly bytes: Uint8Array[] = []
  readonly at: number[] = []
  readonly nibble: number[] = []
  readonly paths: (Nibbles | undefined)[] = []
  readonly accepted: number[] = []
  readonly ownEnd: number[] = []
  readonly childrenEnd: number[] = []
  readonly unknown: number[] = []

  /** Children so far. */
  get size(): number {
    return this.bytes.length
  }

  /** A child of a branch, at nibble `nibble` below it, its hash in `bytes` from `at`. */
  pushChild(bytes: Uint8Array, at: number, nibble: number): void {
    this.bytes.push(bytes)
    this.at.push(at)
    this.nibble.push(nibble)
    this.paths.push(undefined)
  }

  /** A child at `path`. */
  pushChildAt(hash: Uint8Array, path: Nibbles): void {
    this.bytes.push(hash)
    this.at.push(0)
    this.nibble.push(AT_PATH)
    this.paths.push(path)
  }

  /** Accepts the node in slot `req`, whose children are the ones from `first` on (its own up to `own`). */
  accept(req: number, own: number, first: number, requests: RequestTable): void {
    for (let i = first; i < this.bytes.length; i++) if (requests.findAt(this.bytes[i]!, this.at[i]!) < 0) this.unknown.push(i)
    this.accepted.push(req)
    this.ownEnd.push(own)
    this.childrenEnd.push(this.bytes.length)
  }

  /** Child `i`'s hash as an array of its own (a view). */
  hash(i: number): Uint8Array {
    return this.bytes[i]!.subarray(this.at[i]!, this.at[i]! + 32)
  }

  /** Drops the children from `size` on (those of a node found invalid). */
  truncate(size: number): void {
    this.bytes.length = size
    this.at.length = size
    this.nibble.length = size
    this.paths.length = size
  }

  /** Drops everything (and the references to the blobs). */
  clear(): void {
    this.truncate(0)
    this.accepted.length = 0
    this.ownEnd.length = 0
    this.childrenEnd.length = 0
    this.unknown.length = 0
  }
}
