import type { TopicState } from '../net/topic-protocols.js'
import type { TopicSyncProgress } from '../topic/topic-handle.js'
import { toHex } from '../util/hex.js'

/**
 * What `sync --topic` knows when it gives up: who serves the topic and what they report, and whether a peer
 * refused us as busy since the last progress.
 */
export interface TopicStuckView {
  topic: string
  /** The publisher's peer id, or the quorum of peers that must agree. */
  trust: { publisher: string } | { quorum: number }
  states: ReadonlyMap<string, TopicState>
  /** Whether any peer ever reported the topic during this run. */
  everServed: boolean
  /** Whether a checkpoint signed by the publisher arrived. */
  checkpoint: boolean
  /** Whether a peer answered RATE_LIMITED since the last progress. */
  busy: boolean
  /** How long nothing progressed. */
  idleMs: number
}

/**
 * Why a topic sync made no progress for `--wait`: one line for `dsfg: …`. The causes are tried from the most
 * basic (nobody serves the topic) to the least certain (peers serve it and send nothing that verifies).
 */
export function stuckReason(view: TopicStuckView): string {
  const name = JSON.stringify(view.topic)
  const serving = view.states.size
  const seconds = `${Math.round(view.idleMs / 1000)} s`
  if (serving === 0) {
    return view.everServed ? `topic ${name}: no peer serves it any more (nothing verified for ${seconds})` : `no dialled peer serves topic ${name}`
  }
  if ('quorum' in view.trust && serving < view.trust.quorum) return tooFewPeers(view.topic, serving, view.trust.quorum)
  if ('publisher' in view.trust && !view.checkpoint) {
    return `topic ${name}: no dialled peer holds a checkpoint signed by ${view.trust.publisher}`
  }
  if (view.busy) {
    const who = serving === 1 ? 'the dialled peer serving it' : `the ${serving} dialled peers serving it`
    return `topic ${name}: nothing verified for ${seconds}: ${who} answered busy (RATE_LIMITED)`
  }
  if ('quorum' in view.trust && view.trust.quorum > 1) {
    const split = disagreement(view.states, view.trust.quorum)
    if (split !== undefined) return `topic ${name}: ${split}; no ${view.trust.quorum} agree (nothing verified for ${seconds})`
  }
  return `topic ${name}: no peer answered with items that verify for ${seconds} (${servingPeers(serving)} it)`
}

/** `--quorum needs N`, but fewer dialled peers serve the topic. */
export function tooFewPeers(topic: string, serving: number, needed: number): string {
  if (serving === 0) return `no dialled peer serves topic ${JSON.stringify(topic)}`
  return `topic ${JSON.stringify(topic)}: only ${servingPeers(serving)} it, --quorum needs ${needed}`
}

function servingPeers(n: number): string {
  return n === 1 ? '1 dialled peer serves' : `${n} dialled peers serve`
}

/**
 * How peers' reported states rule out a quorum, if they do: no `quorum` of them report the same head with the
 * same head hash. Peers at different heads may still share the lower one's items (an honest peer behind
 * another), so this is a hint for a sync that made no progress, not proof of a fork.
 */
function disagreement(states: ReadonlyMap<string, TopicState>, quorum: number): string | undefined {
  const groups = new Map<string, number>()
  const hashesAt = new Map<number, Set<string>>()
  for (const s of states.values()) {
    const hash = toHex(s.headHash)
    groups.set(`${s.head}:${hash}`, (groups.get(`${s.head}:${hash}`) ?? 0) + 1)
    hashesAt.set(s.head, (hashesAt.get(s.head) ?? new Set()).add(hash))
  }
  if (Math.max(...groups.values()) >= quorum) return undefined
  const forked = [...hashesAt.values()].some((hashes) => hashes.size > 1)
  const heads = [...hashesAt.keys()].sort((a, b) => b - a).join(', ')
  return forked
    ? `${states.size} peers report different histories (the same head with different items)`
    : `${states.size} peers report different heads (${heads})`
}

/**
 * What counts as progress for `sync --topic`'s `--wait`: items verified (our head rises), trie nodes verified
 * during a checkpoint sync, or a higher target (peers report newer items, or the publisher's next checkpoint
 * arrived: there is more to fetch). A long sync that keeps verifying is never cut; one that verifies nothing
 * for `--wait` seconds is.
 */
export class TopicProgressClock {
  private last: number
  private head: number
  private target = -1
  private trie: { checkpoint: number; nodes: number } | undefined
  private busySince: number | undefined
  /**
   * A checkpoint's trie is all downloaded (a trie report with nothing pending) and its items are being
   * adopted: that reports nothing until it ends, however long a large topic's adoption takes, so it is not idle.
   */
  private adopting = false

  constructor(head: number, now: number) {
    this.head = head
    this.last = now
  }

  /** A `sync:progress` report. */
  report(p: TopicSyncProgress, now: number): void {
    if (p.trie !== undefined) {
      const { checkpoint, nodes } = p.trie
      if (this.trie === undefined || this.trie.checkpoint !== checkpoint.number || nodes > this.trie.nodes) this.progressed(now)
      this.trie = { checkpoint: checkpoint.number, nodes }
      this.adopting = p.trie.pending === 0 && nodes > 0
      // The checkpoint trie's peers answer busy: reported here, not as the download's `peer:busy`.
      if (p.trie.busy > 0) this.refused(now)
    } else {
      this.adopting = false
    }
    this.targetIs(p.target, now)
    if (p.head > this.head) {
      this.head = p.head
      this.progressed(now)
    }
  }

  /** The sync's target as read now. */
  targetIs(target: number, now: number): void {
    if (target <= this.target) return
    this.target = target
    this.progressed(now)
  }

  /** A peer answered RATE_LIMITED. */
  refused(now: number): void {
    this.busySince ??= now
  }

  /** Whether a peer refused us as busy since the last progress. */
  get busy(): boolean {
    return this.busySince !== undefined
  }

  idleMs(now: number): number {
    return this.adopting ? 0 : now - this.last
  }

  /** The checkpoint trie's adoption ended (`trie:adopted` or `trie:failed`): idle time counts again from now. */
  adoptionEnded(now: number): void {
    if (!this.adopting) return
    this.adopting = false
    this.progressed(now)
  }

  private progressed(now: number): void {
    this.last = now
    this.busySince = undefined
  }
}
