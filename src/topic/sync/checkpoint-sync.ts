import { TopicTrieError } from '../../errors.js'
import { toHex } from '../../util/hex.js'
import { type Log, silentLog } from '../../util/log.js'
import type { TrieCheckpoint } from './target.js'
import type { TrieSyncRun } from './types.js'

/** How a checkpoint sync ended: its trie was adopted at `checkpoint`, or it failed. */
export type CheckpointSyncOutcome =
  | { readonly kind: 'adopted'; readonly checkpoint: TrieCheckpoint }
  | { readonly kind: 'failed'; readonly checkpoint: TrieCheckpoint; readonly error: unknown }

export interface CheckpointSyncInit {
  checkpoint: TrieCheckpoint
  /** Starts the trie sync of a root (see `TopicSyncIO.syncTrie`). */
  syncTrie(root: Uint8Array, options: { signal: AbortSignal }): TrieSyncRun
  /** Takes over the synced trie (the `TopicWriter`'s `adopt`). */
  adopt(cp: TrieCheckpoint, options: { signal: AbortSignal }): Promise<void>
  signal: AbortSignal
  /** Where a re-target the trie sync refused is traced. @default silentLog */
  log?: Log
}

/**
 * One checkpoint sync: the topic trie at a trusted checkpoint's root is trie-synced, moved to newer checkpoints
 * while it runs, and adopted (its leaves become our items, checked against the root) when it is stored whole.
 * `settled` never rejects: it says how the sync ended.
 */
export class CheckpointSync {
  private current: TrieCheckpoint
  /** Every checkpoint the trie sync was given, by root, to know which one the finished root belongs to. */
  private readonly targets = new Map<string, TrieCheckpoint>()
  private readonly run: TrieSyncRun
  private readonly log: Log
  /** The trie sync has finished: no more re-targets. */
  private finishing = false
  readonly settled: Promise<CheckpointSyncOutcome>

  constructor(init: CheckpointSyncInit) {
    this.log = init.log ?? silentLog
    this.current = init.checkpoint
    this.targets.set(toHex(init.checkpoint.root), init.checkpoint)
    const controller = new AbortController()
    const signal = AbortSignal.any([init.signal, controller.signal])
    this.run = init.syncTrie(init.checkpoint.root, { signal })
    this.settled = this.finish(init, signal).catch((error: unknown) => {
      // A failed adoption leaves the trie sync nothing to do: stop it (it may still be re-targeted).
      controller.abort()
      return { kind: 'failed', checkpoint: this.current, error }
    })
  }

  /** The checkpoint the trie sync aims at now. */
  get checkpoint(): TrieCheckpoint {
    return this.current
  }

  /** Moves the trie sync to a newer checkpoint; false when it has finished already (it adopts what it has). */
  retarget(cp: TrieCheckpoint): boolean {
    if (this.finishing) return false
    try {
      this.run.retarget(cp.root)
    } catch (err) {
      // The trie sync ended meanwhile: its end is on its way (`settled`).
      this.log.trace('re-targeting the trie sync to checkpoint %d: %e', cp.number, err)
      return false
    }
    this.targets.set(toHex(cp.root), cp)
    this.current = cp
    return true
  }

  private async finish(init: CheckpointSyncInit, signal: AbortSignal): Promise<CheckpointSyncOutcome> {
    const { root } = await this.run.done
    this.finishing = true
    const checkpoint = this.targets.get(toHex(root))
    if (checkpoint === undefined) throw new TopicTrieError(`the trie sync ended at ${toHex(root)}, a root it was not given`)
    await init.adopt(checkpoint, { signal })
    return { kind: 'adopted', checkpoint }
  }
}
