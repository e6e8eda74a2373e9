import { TopicTrieError } from '../../errors.js'
import { equalBytes } from '../../util/bytes.js'
import type { TrieCheckpoint } from './target.js'

/**
 * The publisher checkpoint to check when items `from..to` are stored: one at our head (`from - 1`) or among
 * them, and not at or below what was verified already (`verifiedThrough`).
 */
export function checkpointWithin(
  cp: TrieCheckpoint | undefined,
  from: number,
  to: number,
  verifiedThrough: number
): TrieCheckpoint | undefined {
  if (cp === undefined || cp.number < from - 1 || cp.number > to || cp.number <= verifiedThrough) return undefined
  return cp
}

export interface CheckpointVerifierIO {
  /** The topic trie's root over our items. */
  root(): Promise<Uint8Array>
  /** Checks our items `0..number` rebuild to `root`, recording the checkpoint; rejects with `TopicTrieError` if not. */
  adopt?(root: Uint8Array, number: number, options?: { signal?: AbortSignal }): Promise<void>
}

/**
 * How far our items are verified against checkpoint roots, and the check itself: our items `0..number` must
 * rebuild to the signed root. `verifiedThrough` only grows; what is at or below it is never checked again (a
 * replay below our head would cost a rebuild of the whole trie).
 */
export class CheckpointVerifier {
  private readonly io: CheckpointVerifierIO
  private through = -1

  constructor(io: CheckpointVerifierIO) {
    this.io = io
  }

  /** Our items `0..verifiedThrough` matched a checkpoint's root (-1: none yet). */
  get verifiedThrough(): number {
    return this.through
  }

  /** Items `0..number` are known verified (a checkpoint the store recorded, or an adopted trie). */
  verified(number: number): void {
    this.through = Math.max(this.through, number)
  }

  /**
   * Whether our items `0..cp.number` (our head is exactly `cp.number` or the caller checked it is at least
   * that, with `adopt`) rebuild to `cp.root`; marks them verified when they do. Store failures reject.
   */
  async matches(cp: TrieCheckpoint, signal?: AbortSignal): Promise<boolean> {
    if (cp.number <= this.through) return true
    if (this.io.adopt !== undefined) {
      try {
        // Also records the checkpoint and writes its trie whole, so we can serve it to trie syncs.
        await this.io.adopt(cp.root, cp.number, { signal })
      } catch (error) {
        if (error instanceof TopicTrieError) return false
        throw error
      }
    } else if (!equalBytes(await this.io.root(), cp.root)) {
      return false
    }
    this.verified(cp.number)
    return true
  }
}
