import type { PeerInfo } from '../../fsm/types.js'
import { equalBytes } from '../../util/bytes.js'

/**
 * The start-back tip check's decisions, kept pure: which of our newest items to re-check against whom, and
 * what peers' answers let us drop. `TopicSync` does the I/O between them.
 */

export interface TipCheckPlan {
  /** The first of our items to re-check (through our head). */
  from: number
  /** Answers that must agree before anything is dropped. */
  needed: number
  /** Peers that hold every item `from..head`, to ask in turn until `needed` have answered. */
  peers: PeerInfo[]
}

/**
 * Re-check our newest `startBack` items (through `head`) against peers that hold them all; `undefined` when
 * there is nothing to check or fewer such peers than `max(2, quorum)`: one peer's word never drops items.
 */
export function planTipCheck(head: number, startBack: number, quorum: number, peers: readonly PeerInfo[]): TipCheckPlan | undefined {
  if (startBack <= 0 || head < 0) return undefined
  const needed = Math.max(2, quorum)
  const from = Math.max(0, head - startBack + 1)
  const eligible = peers.filter((p) => p.lowest <= from && p.head >= head)
  return eligible.length < needed ? undefined : { from, needed, peers: eligible }
}

/**
 * Where a peer's hashes of items `from..` first differ from ours: the item number, -1 when they all agree, and
 * `undefined` for an answer of another length (not an answer to count).
 */
export function firstDifference(ours: readonly Uint8Array[], theirs: readonly Uint8Array[], from: number): number | undefined {
  if (theirs.length !== ours.length) return undefined
  const i = ours.findIndex((hash, j) => !equalBytes(hash, theirs[j]!))
  return i < 0 ? -1 : from + i
}

/**
 * The first of our items to drop, given peers' first differences: only when at least `needed` answered and all
 * name the same item. Any disagreement, too few answers, or agreement that our items are right drops nothing.
 */
export function tipToDrop(firstDiffs: readonly number[], needed: number): number | undefined {
  if (firstDiffs.length < needed || firstDiffs.some((d) => d !== firstDiffs[0])) return undefined
  const wrongFrom = firstDiffs[0]!
  return wrongFrom < 0 ? undefined : wrongFrom
}
