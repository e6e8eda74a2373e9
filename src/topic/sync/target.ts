import { InvalidInputError } from '../../errors.js'
import type { PeerInfo } from '../../fsm/types.js'
import type { TopicState } from '../../net/topic-protocols.js'
import { EMPTY_ROOT } from '../../trie/keccak.js'
import { equalBytes } from '../../util/bytes.js'
import { toHex } from '../../util/hex.js'

/**
 * What a topic sync aims at, decided from what it trusts: the pure half of `TopicSync`'s planning, tested
 * without a network or a loop.
 */

/** A topic trie checkpoint: the root over items `0..number`. */
export interface TrieCheckpoint {
  number: number
  root: Uint8Array
}

/**
 * Who decides the target. With a publisher only its signed checkpoint does (none before the first arrives);
 * without one, a quorum of peers' reported states does.
 */
export type TargetAuthority =
  | { readonly kind: 'publisher'; readonly checkpoint: TrieCheckpoint | undefined }
  | { readonly kind: 'quorum'; readonly states: ReadonlyMap<string, TopicState>; readonly quorum: number }

/**
 * Chooses the checkpoint to trie-sync from peers' reported states when no publisher decides (the DSFG
 * `selectFork` hook); `undefined` for none. See `defaultSelectFork`.
 */
export type SelectFork = (states: ReadonlyMap<string, TopicState>, quorum: number) => TrieCheckpoint | undefined

/**
 * The highest checkpoint that at least `quorum` peers report with the same root; when two roots at that number
 * both reach the quorum (a fork), the one more peers report, and none on a tie.
 */
export const defaultSelectFork: SelectFork = (states, quorum) => {
  const votes = new Map<string, { cp: TrieCheckpoint; count: number }>()
  for (const { checkpoint } of states.values()) {
    // Topics without a checkpoint report the empty root (the wire has no "absent").
    if (equalBytes(checkpoint.root, EMPTY_ROOT)) continue
    const key = `${checkpoint.number}:${toHex(checkpoint.root)}`
    const vote = votes.get(key) ?? { cp: checkpoint, count: 0 }
    vote.count++
    votes.set(key, vote)
  }
  let best: { cp: TrieCheckpoint; count: number } | undefined
  let tied = false
  for (const vote of votes.values()) {
    if (vote.count < quorum) continue
    if (best === undefined || vote.cp.number > best.cp.number || (vote.cp.number === best.cp.number && vote.count > best.count)) {
      best = vote
      tied = false
    } else if (vote.cp.number === best.cp.number && vote.count === best.count) {
      tied = true
    }
  }
  return best === undefined || tied ? undefined : { number: best.cp.number, root: best.cp.root }
}

/** Peers' reported states as the downloader's `PeerInfo`s (id and the range each claims). */
export function peerInfos(states: ReadonlyMap<string, TopicState>): PeerInfo[] {
  return [...states].map(([id, s]) => ({ id, lowest: s.lowest, head: s.head }))
}

/** The highest head at least `quorum` peers report (the `quorum`-th highest), -1 when fewer peers report one. */
export function quorumHead(states: ReadonlyMap<string, TopicState>, quorum: number): number {
  const needed = Math.max(1, quorum)
  const heads = [...states.values()].map((s) => s.head).sort((a, b) => b - a)
  return heads.length >= needed ? heads[needed - 1]! : -1
}

/**
 * The item number to reach: the number of the publisher's newest signed checkpoint (items past it come from
 * its signed gossip, or with its next checkpoint; -1 before the first), or else the highest head a quorum of
 * peers reaches.
 */
export function syncTarget(authority: TargetAuthority): number {
  switch (authority.kind) {
    case 'publisher':
      return authority.checkpoint?.number ?? -1
    case 'quorum':
      return quorumHead(authority.states, authority.quorum)
    default: {
      const exhaustive: never = authority
      throw new InvalidInputError(`unknown target authority ${JSON.stringify(exhaustive)}`)
    }
  }
}

/**
 * The checkpoint a trie sync may trust: the publisher's, or else the one `selectFork` picks from peers' states.
 * An application's `selectFork` that throws picks none (the items are downloaded instead); `onError` hears why.
 */
export function trieCandidate(
  authority: TargetAuthority,
  selectFork: SelectFork,
  onError?: (err: unknown) => void
): TrieCheckpoint | undefined {
  switch (authority.kind) {
    case 'publisher': {
      const cp = authority.checkpoint
      return cp === undefined ? undefined : { number: cp.number, root: cp.root }
    }
    case 'quorum':
      try {
        return selectFork(authority.states, authority.quorum)
      } catch (err) {
        onError?.(err)
        return undefined
      }
    default: {
      const exhaustive: never = authority
      throw new InvalidInputError(`unknown target authority ${JSON.stringify(exhaustive)}`)
    }
  }
}

export interface CheckpointSyncChoice {
  /** Our highest stored item number, -1 for none. */
  head: number
  /** Checkpoints at or below this number were verified already, or their checkpoint sync failed (-1: none). */
  doneThrough: number
  /** How far past our head a checkpoint must be for a trie sync to beat downloading the items. */
  minItems: number
}

/**
 * Whether to start a checkpoint sync for `candidate`: only for one not yet verified (nor failed) that is at
 * least `minItems` past our head.
 */
export function checkpointToSync(candidate: TrieCheckpoint | undefined, choice: CheckpointSyncChoice): TrieCheckpoint | undefined {
  if (candidate === undefined || candidate.number <= choice.doneThrough) return undefined
  return candidate.number - choice.head >= choice.minItems ? candidate : undefined
}
