import type { ConsumerResult, Item } from '../../fsm/types.js'
import { Serial } from '../../util/serial.js'
import { CheckpointVerifier, checkpointWithin } from './checkpoint-verifier.js'
import { LiveBuffer, type LiveBufferInit, type LiveOutcome } from './live-buffer.js'
import type { TrieCheckpoint } from './target.js'
import type { TopicSyncIO, VerifiedItem } from './types.js'

export interface TopicWriterInit {
  io: Pick<TopicSyncIO, 'head' | 'append' | 'truncate' | 'root' | 'adopt'>
  /** The publisher's newest signed checkpoint (none without a publisher): items crossing it are checked. */
  checkpoint(): TrieCheckpoint | undefined
  live?: LiveBufferInit
  /** A live item arrived past a gap after our head: the downloader should bring `from..to`. */
  onGap?(from: number, to: number): void
  /** Items were stored up to `head` (or dropped down to it). */
  onStored?(head: number): void
  /** Our items `0..number` matched the publisher's root for checkpoint `number`. */
  onVerified?(number: number): void
  /** They did not: items after `kept` (the last verified checkpoint) were dropped. */
  onMismatch?(number: number, kept: number): void
}

/**
 * The one writer of a topic's store. Every write (the downloader's verified batches, live items, an adopted
 * trie, a repaired tip, the publisher's own items) runs through it, one at a time in call order, so no two
 * writers race on the head. Where stored items cross the publisher's newest checkpoint, it checks our root
 * against the signed one before going on, and on a mismatch drops what is not verified. Live items past a gap
 * wait in a bounded buffer and follow as soon as a write closes the gap.
 */
export class TopicWriter {
  private readonly init: TopicWriterInit
  private readonly serial = new Serial()
  private readonly buffer: LiveBuffer
  readonly verifier: CheckpointVerifier

  constructor(init: TopicWriterInit) {
    this.init = init
    this.buffer = new LiveBuffer(init.live)
    this.verifier = new CheckpointVerifier(init.io)
  }

  /** Our highest stored item number, -1 when we hold none. */
  head(): Promise<number> {
    return this.init.io.head()
  }

  /** Live items held past a gap. */
  get buffered(): number {
    return this.buffer.size
  }

  /**
   * Stores verified items that follow our head (those we hold already are skipped), checking a publisher
   * checkpoint they cross; a mismatch resolves to a local fault after the unverified items were dropped.
   */
  commit(items: VerifiedItem[], options: { signal?: AbortSignal } = {}): Promise<ConsumerResult> {
    return this.serial.run(async () => {
      const result = await this.store(items, options.signal)
      if (result.ok) await this.drain(options.signal)
      return result
    })
  }

  /** A live item (already verified by its signature): stored if next, held past a gap, or dropped. */
  live(item: Item): Promise<LiveOutcome> {
    return this.serial.run(async () => {
      const head = await this.head()
      const outcome = this.buffer.offer(item, head)
      if (outcome === 'buffered') this.init.onGap?.(head + 1, item.n - 1)
      if (outcome !== 'applied') return outcome
      const result = await this.store([item])
      if (result.ok) await this.drain()
      return 'applied'
    })
  }

  /**
   * The publisher's checkpoint at or below our head is checked against our items now (one above is checked
   * when items cross it). Store failures reject.
   */
  verifyStored(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.serial.run(async () => {
      const cp = this.init.checkpoint()
      if (cp === undefined || cp.number <= this.verifier.verifiedThrough) return
      const head = await this.head()
      // Without `adopt` only the root at our head can be compared.
      if (cp.number > head || (this.init.io.adopt === undefined && cp.number !== head)) return
      await this.check(cp, options.signal)
    })
  }

  /** Takes over the topic trie stored whole at `(number, root)` (see `TopicSyncIO.adopt`); live items held follow. */
  adopt(cp: TrieCheckpoint, options: { signal?: AbortSignal } = {}): Promise<void> {
    const adopt = this.init.io.adopt
    return this.serial.run(async () => {
      if (adopt === undefined) throw new TypeError('adopt is not available')
      await adopt(cp.root, cp.number, { signal: options.signal })
      this.verifier.verified(cp.number)
      this.init.onStored?.(await this.head())
      await this.drain(options.signal)
    })
  }

  /** Drops our items above `head`. */
  truncate(head: number): Promise<void> {
    return this.serial.run(() => this.drop(head))
  }

  /** Runs `write` alone (a write of the store by the topic's owner, such as publishing), then reports the head. */
  exclusive<T>(write: () => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.serial.run(async () => {
      try {
        return await write()
      } finally {
        this.init.onStored?.(await this.head())
      }
    }, options)
  }

  /** Resolves once every write called so far has settled. */
  idle(): Promise<void> {
    return this.serial.idle()
  }

  private async store(items: VerifiedItem[], signal?: AbortSignal): Promise<ConsumerResult> {
    const head = await this.head()
    const fresh = items.filter((item) => item.n > head)
    if (fresh.length === 0) return { ok: true }
    const from = fresh[0]!.n
    const to = fresh[fresh.length - 1]!.n
    const cp = checkpointWithin(this.init.checkpoint(), from, to, this.verifier.verifiedThrough)
    if (cp === undefined) {
      await this.append(fresh)
      return { ok: true }
    }
    const split = cp.number - from + 1
    if (split > 0) await this.append(fresh.slice(0, split))
    if (!(await this.check(cp, signal))) return { ok: false, fault: 'local' }
    if (split < fresh.length) await this.append(fresh.slice(split))
    return { ok: true }
  }

  /** Whether our items match `cp`; on a mismatch, drops everything after the last verified checkpoint. */
  private async check(cp: TrieCheckpoint, signal?: AbortSignal): Promise<boolean> {
    if (await this.verifier.matches(cp, signal)) {
      this.init.onVerified?.(cp.number)
      return true
    }
    const kept = this.verifier.verifiedThrough
    await this.drop(kept)
    this.init.onMismatch?.(cp.number, kept)
    return false
  }

  private async append(items: VerifiedItem[]): Promise<void> {
    await this.init.io.append(items)
    this.init.onStored?.(items[items.length - 1]!.n)
  }

  private async drop(head: number): Promise<void> {
    await this.init.io.truncate(head)
    this.init.onStored?.(await this.head())
  }

  /** Stores the live items held that follow our head now. */
  private async drain(signal?: AbortSignal): Promise<void> {
    const run = this.buffer.takeRun(await this.head())
    if (run.length > 0) await this.store(run, signal)
  }
}
