import { DEFAULT_TOPIC_FIRST_BATCH_ITEMS, HASH_PREFETCH_ITEMS, TOPIC_WRITES_IN_FLIGHT } from '../../constants.js'
import { AbortError, PeerBusyError } from '../../errors.js'
import type { ConsumerResult, Item, PeerInfo } from '../../fsm/types.js'
import { keccak256 } from '../../trie/keccak.js'
import { equalBytes } from '../../util/bytes.js'
import type { Clock } from '../../util/clock.js'
import { toHex } from '../../util/hex.js'
import type { Log } from '../../util/log.js'
import type { VerifiedCounts } from '../../util/metrics.js'
import { ContentHashes, type ExpectedHash } from '../content-hashes.js'
import { WriteBehind } from '../write-behind.js'
import { BatchSizer } from './batch-sizer.js'
import { checkpointWithin } from './checkpoint-verifier.js'
import { LinkRates } from './link-rates.js'
import { peerInfos, type TrieCheckpoint } from './target.js'
import type { TopicWriter } from './topic-writer.js'
import type { TopicSyncIO, VerifiedItem } from './types.js'

/** The verdict on one delivered batch. */
export type BatchCheck =
  | { readonly kind: 'verified'; readonly items: VerifiedItem[] }
  /** Items without a range proof where only proofs count (a sync with a publisher). */
  | { readonly kind: 'unproven' }
  /** No content hash is known for item `n` yet. */
  | { readonly kind: 'no-hash'; readonly n: number }
  /** Item `n` does not hash to what `hashPeer` said: the batch or the hash is wrong. */
  | { readonly kind: 'mismatch'; readonly n: number; readonly hashPeer: string }

/**
 * Checks a batch: items proven against a trusted root (a prefix: proofs cover items up to a checkpoint) pass as
 * they are; the rest must hash to `expected`, or, where `expected` is absent (a publisher decides), fail.
 */
export function checkBatch(
  items: readonly Item[],
  proven: (item: Item) => boolean,
  expected: ((n: number) => ExpectedHash | undefined) | undefined
): BatchCheck {
  const verified: VerifiedItem[] = []
  while (verified.length < items.length && proven(items[verified.length]!)) verified.push(items[verified.length]!)
  if (verified.length === items.length) return { kind: 'verified', items: verified }
  if (expected === undefined) return { kind: 'unproven' }
  for (const item of items.slice(verified.length)) {
    const want = expected(item.n)
    if (want === undefined) return { kind: 'no-hash', n: item.n }
    const hash = keccak256(item.data)
    if (!equalBytes(hash, want.hash)) return { kind: 'mismatch', n: item.n, hashPeer: want.peer }
    verified.push({ n: item.n, data: item.data, hash })
  }
  return { kind: 'verified', items: verified }
}

export interface BatchVerifierInit {
  io: Pick<TopicSyncIO, 'fetch' | 'fetchHashes' | 'localHashes' | 'states' | 'checkpoint'>
  writer: TopicWriter
  /** Distinct peers whose content hashes must agree (without a publisher). */
  quorum: number
  /** Most items per batch. */
  maxItems: number
  /** Most contents requests in flight at one peer (the queue's `maxInFlightPerPeer`). */
  maxInFlight: number
  /** The sync's target (how far content hashes are fetched ahead). */
  target(): number
  /**
   * The signal of the sync's run: writes (and the checkpoint checks in them) follow it, not the download's, which
   * ends whenever the download is planned again.
   */
  runSignal(): AbortSignal | undefined
  /** Resolves true once a checkpoint sync in progress (if any) adopted its trie; false when `signal` aborted. */
  untilAdopted(signal: AbortSignal): Promise<boolean>
  /** The running download must start over from the store's head (a write failed, or items came unproven). */
  replan(): void
  /** A batch failed hash verification. */
  onRejected(from: number, to: number, hashPeer: string): void
  /** Batches should hold `size` items from now on. */
  onBatchSize(size: number): void
  /** For the hedge of a slow source of content hashes. @default systemClock */
  clock?: Clock
  /** Where failed writes are logged. @default silentLog */
  log?: Log
  /** Counts the items (and their bytes) of each batch checked and handed to the store; none by default. */
  metrics?: VerifiedCounts
}

/**
 * The download queue's side of a topic sync: asks peers for items (with a range proof against the publisher's
 * checkpoint when there is one), checks each delivered batch (`checkBatch`, against content hashes from a quorum
 * of peers where no proof counts), and hands verified batches to the `TopicWriter` while it checks the next
 * (`WriteBehind`). Sizes batches to what one reply carries.
 */
export class BatchVerifier {
  private readonly init: BatchVerifierInit
  /** Expected item hashes, fetched ahead from one peer at a time; dropped on any mismatch. */
  private readonly hashes: ContentHashes
  /** Items fetched with a range proof against a trusted checkpoint root (the objects the queue hands back). */
  private readonly proven = new WeakSet<Item>()
  /** Items whose sizes the batch sizer took as they came (`fetch`), not to be taken again on delivery. */
  private readonly sized = new WeakSet<Item>()
  /**
   * Peers that answered a proven contents request with nothing, by the root they were asked to prove against:
   * left out of downloads against that root until peer states change (a liar on its own history claims our
   * range but can prove none of it, and in a sync with a publisher its empty answers exhausted batches' attempts
   * until the download stalled; found by the trust scenarios). Bounded by the connected peers.
   */
  private readonly withoutRoot = new Map<string, string>()
  /** The hash of the last item accepted (handed to the store, maybe not written yet): the next chunk's anchor. */
  private lastAccepted: { n: number; hash: Uint8Array } | null = null
  /** Verified batches on their way to the store, written in order behind the downloader. */
  private readonly writes: WriteBehind
  private readonly sizer: BatchSizer
  /** Each peer's measured rate: how many items to ask of it at once, and how many requests. */
  private readonly links: LinkRates
  /** Counts `peersChanged()`, so a wait for hashes can tell it missed no change. */
  private peerChanges = 0

  constructor(init: BatchVerifierInit) {
    this.init = init
    this.sizer = new BatchSizer({ maxItems: init.maxItems })
    this.links = new LinkRates({ maxInFlight: init.maxInFlight })
    this.hashes = new ContentHashes({
      peers: () => peerInfos(this.init.io.states()),
      fetch: (peer, from, to, options) => init.io.fetchHashes(peer, from, to, options),
      chunk: HASH_PREFETCH_ITEMS,
      quorum: init.quorum,
      log: init.log,
      clock: init.clock
    })
    // A failed write ends the download run: the loop re-plans from what the store holds.
    this.writes = new WriteBehind(TOPIC_WRITES_IN_FLIGHT, (error) => {
      init.log?.error('storing verified items failed: %e', error)
      init.replan()
    })
  }

  /** Items per batch for batches opened from now on. */
  get batchSize(): number {
    return this.sizer.size
  }

  /** Peer states changed: peers left out for want of a proof may have verified the checkpoint since. */
  peersChanged(): void {
    this.withoutRoot.clear()
    this.peerChanges++
  }

  /** Our items changed under the hashes (dropped or repaired): forget the hashes fetched for them. */
  clearHashes(): void {
    this.hashes.clear()
    this.lastAccepted = null
  }

  /** Waits for the batches handed to the store (see `settle` for how they went). */
  idle(): Promise<void> {
    return this.writes.idle()
  }

  /** Waits for the batches handed to the store; rejects with a write's failure since the last settle. */
  settle(): Promise<void> {
    return this.writes.settle()
  }

  /** The peers the downloader may ask: all of them, less those that could not prove against the current root. */
  peers(): PeerInfo[] {
    const peers = peerInfos(this.init.io.states())
    const root = this.init.io.checkpoint?.()?.root
    if (this.withoutRoot.size === 0 || root === undefined) return peers
    const hex = toHex(root)
    return peers.filter((p) => this.withoutRoot.get(p.id) !== hex)
  }

  /** Contents requests `peer` may have in flight now, from the rate its link delivered so far. */
  maxInFlight(peer: string): number {
    return this.links.inFlight(peer, this.sizer.size * this.sizer.itemBytes)
  }

  /**
   * Items `from..` from `peer`, proven against the publisher's checkpoint when it covers `from` (the queue asks
   * for the rest of a short reply). The whole batch in one request, however thin the link: replies on a
   * peer's stream come one after another, so a batch cut in requests to fit the link had its rest queued
   * behind the next batch's request (over 2 Mbit/s no item was stored for 17 s), and a long reply is held to
   * a deadline that follows its progress.
   */
  async fetch(peer: string, from: number, amount: number, options: { signal: AbortSignal }): Promise<Item[]> {
    const proveAgainst = this.proofCheckpoint(from)
    this.links.started(peer)
    let items: Item[]
    try {
      items = await this.init.io.fetch(peer, from, amount, { signal: options.signal, proveAgainst, lanes: this.links.lanes(peer) })
    } catch (err) {
      // A refusal or our own abort says nothing of the link; a timeout or a failed stream does.
      if (err instanceof PeerBusyError || err instanceof AbortError || options.signal.aborted) this.links.cancelled(peer)
      else this.links.ended(peer, 0)
      throw err
    }
    let bytes = 0
    for (const item of items) bytes += item.data.length
    this.links.ended(peer, bytes)
    if (proveAgainst === undefined) return items
    for (const item of items) this.proven.add(item)
    // The queue opens its next batches as soon as this returns: sized only on delivery, the whole second round
    // of requests at each peer was of the first batch's 16 items. A reply may size them now if it is a fair
    // sample: proven, and exactly the range asked for, of at least a first batch's items. How many items a
    // short reply holds is its peer's choice: one that sent only the small item of a range (an outside tester's
    // attack) had batches of 256 items of 250 KiB opened, and the client's RSS grew from 450 to 750 MB.
    if (items.length >= DEFAULT_TOPIC_FIRST_BATCH_ITEMS && items.length === Math.min(amount, proveAgainst.number - from + 1)) {
      this.recordSizes(items)
      for (const item of items) this.sized.add(item)
    }
    // No proof against the signed root: a peer on another history, or one that has not verified this
    // checkpoint yet. Not a fault, but asking it again for this root only spends the batch's attempts.
    if (items.length === 0) this.withoutRoot.set(peer, toHex(proveAgainst.root))
    return items
  }

  /**
   * Checks a delivered batch and hands it to the store; accepts it while the store writes (a failed write
   * re-plans the download from the store's head). A hash mismatch sends the batch back for download elsewhere
   * and blames nobody; a failure to get hashes holds it and tries again later.
   */
  async deliver(delivered: Item[], signal: AbortSignal): Promise<ConsumerResult> {
    // Items after a checkpoint being trie-synced wait for its adoption (the queue's window bounds them).
    if (!(await this.init.untilAdopted(signal))) return { ok: false, fault: 'local' }
    // After a local failure part of a batch may be stored already: the queue delivers it again whole.
    if (this.writes.failed) return { ok: false, fault: 'local' }
    const head = Math.max(await this.init.writer.head(), this.writes.through)
    const items = delivered.filter((item) => item.n > head)
    if (items.length === 0) return { ok: true }
    const from = items[0]!.n
    const to = items[items.length - 1]!.n
    const publisher = this.init.io.checkpoint !== undefined
    const unproven = items.find((item) => !this.proven.has(item))
    if (unproven !== undefined && !publisher && !(await this.ensureHashes(unproven.n, to, signal))) {
      return { ok: false, fault: 'local', error: this.hashes.refused }
    }
    const check = checkBatch(items, (item) => this.proven.has(item), publisher ? undefined : (n) => this.hashes.get(n))
    switch (check.kind) {
      case 'verified':
        break
      case 'unproven':
        // With a publisher only its signatures decide: no peer's content hash stands in for a proof. (The
        // target is its checkpoint's number, so every item is asked for with a proof; re-plan should one come
        // without.)
        this.init.replan()
        return { ok: false, fault: 'local' }
      case 'mismatch':
        // Either the batch or the hashes are wrong, and without a publisher nothing says which: forget these
        // hashes, so the next check asks another peer, and blame nobody.
        this.hashes.clear()
        this.init.onRejected(from, to, check.hashPeer)
        return { ok: false, fault: 'this' }
      default:
        return { ok: false, fault: 'local' }
    }
    const verified = check.items
    try {
      if (checkpointWithin(this.init.io.checkpoint?.(), from, to, this.init.writer.verifier.verifiedThrough)) {
        // A publisher checkpoint falls in these items: they are stored and checked now, after the writes
        // before them, so a mismatch fails this batch.
        await this.writes.idle()
        if (this.writes.failed) return { ok: false, fault: 'local' }
        const result = await this.init.writer.commit(verified, { signal: this.init.runSignal() })
        // On a mismatch the writer dropped them: neither counted nor an anchor for the next hashes.
        if (result.ok) this.accepted(from, to, verified)
        return result
      }
      await this.writes.add(to, async () => {
        const result = await this.init.writer.commit(verified, { signal: this.init.runSignal() })
        if (!result.ok) throw new Error(`items ${from}..${to} did not match the publisher's checkpoint`)
      })
    } catch (error) {
      this.init.log?.error('storing items %d..%d failed: %e', from, to, error)
      return { ok: false, fault: 'local', error }
    }
    this.accepted(from, to, verified)
    return { ok: true }
  }

  /**
   * The publisher's newest signed checkpoint, which items from `from` on are proven against when it covers
   * `from` (the target is its number, so it always does). Without a publisher, items are checked against
   * content hashes from peers, as the quorum mode's weaker guarantee allows: a checkpoint root a peer reports
   * is no better than its hashes, and one that no server can prove against would stall the download.
   */
  private proofCheckpoint(from: number): TrieCheckpoint | undefined {
    const cp = this.init.io.checkpoint?.()
    return cp !== undefined && cp.number >= from ? { number: cp.number, root: cp.root } : undefined
  }

  /**
   * The content hashes of `from..to`, tried again while peer states changed during the attempt: the queue
   * holds a batch that failed for want of hashes until peers change next, and a change that came while we
   * asked (a peer that would have made the quorum, say) must not be missed.
   */
  private async ensureHashes(from: number, to: number, signal: AbortSignal): Promise<boolean> {
    const anchor = await this.hashOf(from - 1)
    for (;;) {
      const version = this.peerChanges
      if (await this.hashes.ensure(from, to, this.init.target(), signal, anchor)) return true
      if (version === this.peerChanges || signal.aborted) return false
    }
  }

  /** The hash of our item `n` (the last one accepted, or one the store holds); none for -1 or one we lack. */
  private async hashOf(n: number): Promise<Uint8Array | undefined> {
    if (n < 0) return undefined
    if (this.lastAccepted?.n === n) return this.lastAccepted.hash
    return (await this.init.io.localHashes(n, n))[0]
  }

  /** Sizes the next batches from these verified items. */
  private recordSizes(items: readonly { data: Uint8Array }[]): void {
    if (this.sizer.record(items)) this.init.onBatchSize(this.sizer.size)
  }

  /** Items `from..to` were checked and handed to the store. */
  private accepted(from: number, to: number, verified: VerifiedItem[]): void {
    const last = verified[verified.length - 1]
    this.lastAccepted = last?.hash === undefined ? null : { n: last.n, hash: last.hash }
    this.hashes.forget(from, to)
    // Items sized as they came (`fetch`) are not counted twice.
    const unsized = verified.filter((item) => !this.sized.has(item))
    if (unsized.length > 0) this.recordSizes(unsized)
    const metrics = this.init.metrics
    if (metrics !== undefined) {
      let bytes = 0
      for (const item of verified) bytes += item.data.length
      metrics.count.increment(verified.length)
      metrics.bytes.increment(bytes)
    }
  }
}
