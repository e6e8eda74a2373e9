import { BREADTH_FIRST_BELOW_REQUESTS, MAX_FETCHES_PER_DEPTH } from '../constants.js'
import { AlreadyProcessedError, InvalidNodeError, NotRequestedError } from '../errors.js'
import type { BatchOp, KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { type Nibbles, nibblesToBytes } from '../trie/nibbles.js'
import { decodeNode, type HashChild, type NodeLeaf, nodeChildren } from '../trie/node.js'
import { ByteMap } from '../util/byte-map.js'
import { equalBytes } from '../util/bytes.js'
import { HashFilter } from '../util/hash-filter.js'
import { toHex } from '../util/hex.js'
import { type Log, silentLog } from '../util/log.js'
import { DepthQueue, pathPrefix } from './depth-queue.js'

// reference: go-ethereum@02b73d4e trie/sync.go (scheduler), with the hash-keyed multi-parent requests of
// go-ethereum v1.9.25 because DSFG fetches nodes by hash (`/dsfg/nodes/1.0.0`), not by path.

/**
 * Called for every value found in a processed node of the main trie (including values inside embedded
 * children). It may return the roots of further tries hanging off this leaf (as an Ethereum account leaf
 * names its storage trie); those are synced too, and the node holding the leaf is committed only after them.
 * Leaves of such sub-tries are not reported. Values at an odd nibble depth have no byte key and are skipped.
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

interface NodeRequest {
  readonly hash: Uint8Array
  /** The path this hash was first reached at; it sets the priority. */
  readonly path: Nibbles
  /** `pathPrefix(path)`, for the queue. */
  readonly prefix: number
  /** The delivered blob, kept until the whole subtrie is present. */
  data: Uint8Array | null
  /**
   * The request waiting for this one (null for the root). A node referenced more than once (by one parent or
   * several: identical subtries) lists the other references in `moreParents`; one field and no array for the
   * common case saves an object per node.
   */
  readonly parent: NodeRequest | null
  moreParents: NodeRequest[] | null
  /** Children (nodes and sub-tries) not yet complete. */
  deps: number
  /** Whether leaves of this node go to `onLeaf` (false inside sub-tries). */
  readonly reportLeaves: boolean
  /** Whether `missing` handed it out, so it counts against its depth until commit. */
  counted: boolean
  /** Its whole subtrie is present: it waits in the write batch, and stays in `requests` until committed. */
  complete: boolean
}

/**
 * A copy of `blob` with the hashes of `children` (views into `blob`, as `decodeNode` gives them) moved onto it.
 * A node with children waits for them, and its children's requests are keyed by those hashes: neither may hold
 * the reply the blob came in. A node without any is complete at once and its blob written at the next commit.
 */
function ownCopy(blob: Uint8Array, children: HashChild[]): Uint8Array {
  // Not `slice()`: on a Node `Buffer` it returns a view.
  const copy = new Uint8Array(blob)
  for (const child of children) {
    const at = child.hash.byteOffset - blob.byteOffset
    child.hash = copy.subarray(at, at + child.hash.length)
  }
  return copy
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
  readonly [hashed]: true
}

/** Hashes `blob` once, for `processMany`. */
export function hashBlob(blob: Uint8Array): HashedBlob {
  return { hash: keccak256(blob), blob, [hashed]: true }
}

/** The blob and its hash, computing the hash only for a bare blob (a forged `HashedBlob` is re-hashed). */
function blobAndHash(node: Uint8Array | HashedBlob): HashedBlob {
  if (node instanceof Uint8Array) return hashBlob(node)
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
   * one that only waits to be written.
   */
  private readonly requests = new ByteMap<NodeRequest>()
  private readonly queue = new DepthQueue<NodeRequest>()
  /** Requests handed out by `missing` and not yet committed, by depth. */
  private readonly fetches: number[] = []
  /** Complete requests not yet written, in completion order. */
  private membatch: NodeRequest[] = []
  private membatchBytes = 0
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
    if (!equalBytes(this.root, EMPTY_ROOT)) this.schedule(this.root, new Uint8Array(0), null, true)
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
    return this.requests.get(hash)?.data === null
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
   */
  missing(max: number): Uint8Array[] {
    return this.requests.size < this.breadthFirstBelow ? this.shallowestMissing(max) : this.deepestMissing(max)
  }

  /**
   * Shallowest first: each level is asked for whole before the one below it, so the nodes left at the end are
   * many and known early. Deepest first leaves the last subtries' levels to be found one round trip after
   * another: over 80 ms links the last second of a 100k-key sync moved a fifth of what the links carry.
   */
  private shallowestMissing(max: number): Uint8Array[] {
    const out: Uint8Array[] = []
    const deepest = this.queue.maxDepth
    for (let depth = 0; depth <= deepest && (max === 0 || out.length < max); depth++) {
      for (let req = this.queue.peekAt(depth); req !== undefined && (max === 0 || out.length < max); req = this.queue.peekAt(depth)) {
        if (req.data !== null) {
          this.queue.popAt(depth)
          continue
        }
        const fetched = this.fetches[depth] ?? 0
        if (fetched >= this.maxFetchesPerDepth) break
        this.queue.popAt(depth)
        this.handOut(req, depth)
        out.push(req.hash)
      }
    }
    return out
  }

  private handOut(req: NodeRequest, depth: number): void {
    this.fetches[depth] = (this.fetches[depth] ?? 0) + 1
    req.counted = true
  }

  private deepestMissing(max: number): Uint8Array[] {
    const out: Uint8Array[] = []
    while (max === 0 || out.length < max) {
      const req = this.queue.peek()
      if (req === undefined) break
      // Requests delivered before `missing` reached them (any pending hash is accepted) are dropped lazily; a
      // request leaves `requests` only once complete, so it has its data by then.
      if (req.data !== null) {
        this.queue.pop()
        continue
      }
      const depth = req.path.length
      if ((this.fetches[depth] ?? 0) >= this.maxFetchesPerDepth) break
      this.queue.pop()
      this.handOut(req, depth)
      out.push(req.hash)
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
      if (done.length === 0) return 0
      const ops: BatchOp[] = new Array(done.length)
      for (let i = 0; i < done.length; i++) ops[i] = { type: 'put', key: done[i]!.hash, value: done[i]!.data! }
      await this.store.batch(ops)
      for (const req of done) {
        this.requests.delete(req.hash)
        this.written?.add(req.hash)
      }
      this.membatch = []
      this.log('stored %d nodes (%d bytes), %d pending', ops.length, this.membatchBytes, this.pending)
      this.membatchBytes = 0
      this.pinned.clear()
      return ops.length
    })
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn)
    this.lock = run.catch(() => undefined)
    return run
  }

  private async processLocked(nodes: (Uint8Array | HashedBlob)[]): Promise<ProcessResult[]> {
    const results: ProcessResult[] = new Array(nodes.length)
    // Accepted requests and their children (hash-referenced ones first, then the sub-trie roots `onLeaf` named
    // from index `ownChildren[i]` on), side by side rather than an object per node.
    const accepted: NodeRequest[] = []
    const childrenOf: HashChild[][] = []
    const ownChildren: number[] = []
    // Children nothing is known of: neither scheduled nor complete. A child named twice is looked up twice.
    const unknown: Uint8Array[] = []

    for (let n = 0; n < nodes.length; n++) {
      const { hash, blob: delivered } = blobAndHash(nodes[n]!)
      const req = this.requests.get(hash)
      if (req === undefined || req.complete) {
        results[n] = { ok: false, hash, error: new NotRequestedError(`node ${toHex(hash)} was not requested`) }
        continue
      }
      if (req.data !== null) {
        results[n] = { ok: false, hash, error: new AlreadyProcessedError(`node ${toHex(hash)} was already processed`) }
        continue
      }
      let decoded: ReturnType<typeof nodeChildren>
      const withLeaves = req.reportLeaves && this.onLeaf !== undefined
      // The blob may be a view into a whole reply (`decodeNodesResponse`). What outlives this call keeps the
      // node's own copy instead: its leaves' values, which `onLeaf` may keep, and its children's hashes.
      let blob = withLeaves ? new Uint8Array(delivered) : delivered
      try {
        decoded = nodeChildren(decodeNode(blob), req.path, withLeaves)
      } catch (err) {
        const error =
          err instanceof InvalidNodeError ? err : new InvalidNodeError(`node ${toHex(hash)}: invalid`, { cause: err })
        results[n] = { ok: false, hash, error }
        continue
      }
      const children = decoded.children
      const own = children.length
      if (own > 0 && blob === delivered) blob = ownCopy(blob, children)
      if (withLeaves) {
        try {
          await this.reportLeaves(decoded.leaves, children)
        } catch (err) {
          // Nothing has been scheduled yet: forget this call's deliveries so they can be processed again.
          for (const a of accepted) a.data = null
          throw err
        }
      }
      req.data = blob
      results[n] = { ok: true, hash }
      for (const c of children) if (!this.requests.has(c.hash)) unknown.push(c.hash)
      accepted.push(req)
      childrenOf.push(children)
      ownChildren.push(own)
    }

    // One round trip for every child we know nothing about: a stored node means its subtrie is complete.
    let stored: ByteMap<true> | null = null
    const written = this.written
    const lookUp = written === null ? unknown : unknown.filter((hash) => written.mayHold(hash))
    if (lookUp.length > 0) {
      const values = await this.store.getMany(lookUp)
      for (let i = 0; i < values.length; i++) {
        if (values[i] === undefined) continue
        stored ??= new ByteMap()
        stored.set(lookUp[i]!, true)
      }
    }

    for (let a = 0; a < accepted.length; a++) {
      const req = accepted[a]!
      const children = childrenOf[a]!
      const own = ownChildren[a]!
      for (let i = 0; i < children.length; i++) {
        const c = children[i]!
        const existing = this.requests.get(c.hash)
        if (existing !== undefined) {
          if (existing.complete) continue
          if (existing.moreParents === null) existing.moreParents = [req]
          else existing.moreParents.push(req)
        } else if (stored?.has(c.hash) === true) {
          continue
        } else {
          // Inside a sub-trie, and at the root of one `onLeaf` named, leaves are not reported.
          this.schedule(c.hash, c.path, req, req.reportLeaves && i < own)
        }
        req.deps++
      }
      if (req.deps === 0) this.completed(req)
    }
    return results
  }

  /** Reports `leaves` to `onLeaf` and appends the sub-trie roots it names to `children`. */
  private async reportLeaves(leaves: NodeLeaf[], children: HashChild[]): Promise<void> {
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
        children.push({ hash: root, path: leaf.path })
      }
    }
  }

  private schedule(hash: Uint8Array, path: Nibbles, parent: NodeRequest | null, reportLeaves: boolean): void {
    const req: NodeRequest = {
      hash,
      path,
      prefix: pathPrefix(path),
      data: null,
      parent,
      moreParents: null,
      deps: 0,
      reportLeaves,
      counted: false,
      complete: false
    }
    this.requests.set(hash, req)
    this.queue.push(req)
  }

  /** Moves a request whose subtrie is complete into the write batch, then any parent this completes. */
  private completed(first: NodeRequest): void {
    const stack = [first]
    while (stack.length > 0) {
      const req = stack.pop()!
      req.complete = true
      this.membatch.push(req)
      const data = req.data!
      this.membatchBytes += 32 + data.length
      if (data.byteLength !== data.buffer.byteLength && !this.pinned.has(data.buffer)) {
        this.pinned.add(data.buffer)
        this.membatchBytes += data.buffer.byteLength
      }
      if (req.counted) this.fetches[req.path.length]!--
      if (req.parent !== null && --req.parent.deps === 0) stack.push(req.parent)
      if (req.moreParents !== null) {
        for (const parent of req.moreParents) if (--parent.deps === 0) stack.push(parent)
      }
    }
  }
}
