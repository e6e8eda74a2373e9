import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { until } from './wait.js'

/** The peer store tag the DSFG service writes for each offence (src/service/dsfg-service.ts). */
export const PENALTY_TAG = 'dsfg-penalty'

/**
 * The `dsfg-penalty` tag `node`'s peer store holds for `peer` (0 when none). A peer the node never met is
 * absent from its peer store (libp2p's `NotFoundError`): never penalised, so 0. Any other error is thrown, so
 * that a failing peer store cannot pass for a clean record.
 */
export async function penaltyOf(node: Libp2p, peer: PeerId): Promise<number> {
  try {
    return (await node.peerStore.get(peer)).tags.get(PENALTY_TAG)?.value ?? 0
  } catch (error) {
    if ((error as Error | undefined)?.name === 'NotFoundError') return 0
    throw error
  }
}

/** Waits until `node` has tagged every one of `peers` with a penalty (the service tags asynchronously). */
export async function untilTagged(node: Libp2p, peers: PeerId[], timeoutMs = 5_000): Promise<void> {
  await until(
    async () => (await Promise.all(peers.map((p) => penaltyOf(node, p)))).every((v) => v > 0),
    'the liars to be tagged in the peer store',
    timeoutMs
  )
}

/** Blame reported by `peer:penalised` events, by peer id string: the reasons given. */
export class BlameLog {
  readonly reasons = new Map<string, string[]>()

  /** A listener for `peer:penalised` events (of a `StateSyncer` or a topic handle). */
  readonly listener = (e: CustomEvent<{ peer: string; reason: string }>): void => {
    const list = this.reasons.get(e.detail.peer) ?? []
    list.push(e.detail.reason)
    this.reasons.set(e.detail.peer, list)
  }

  blamed(peer: PeerId): boolean {
    return this.reasons.has(peer.toString())
  }

  reasonsOf(peer: PeerId): string[] {
    return this.reasons.get(peer.toString()) ?? []
  }
}

/** A gossip verdict the node's validator gave a message. */
export interface Verdict {
  from: string | undefined
  result: TopicValidatorResult
}

/**
 * Records what `pubsub`'s validator of `topic` decides for each message, by wrapping the validator that is
 * installed now (install it first: start the follow or the sync that subscribes). The verdicts are what the
 * node decided before any message reached the application or went further through the mesh.
 */
export function recordVerdicts(pubsub: GossipSub, topic: string): Verdict[] {
  const verdicts: Verdict[] = []
  const validate = pubsub.topicValidators.get(topic)
  if (validate === undefined) throw new Error(`no validator on ${topic}: subscribe first`)
  pubsub.topicValidators.set(topic, async (peer, message) => {
    const result = await validate(peer, message)
    verdicts.push({ from: message.type === 'signed' ? message.from.toString() : undefined, result })
    return result
  })
  return verdicts
}

/** Waits until `verdicts` holds one for a message signed by `from` with `result`. */
export function untilVerdict(verdicts: Verdict[], from: PeerId, result: TopicValidatorResult, timeoutMs = 10_000): Promise<void> {
  const id = from.toString()
  const name = result === TopicValidatorResult.Accept ? 'accepted' : 'rejected'
  return until(() => verdicts.some((v) => v.from === id && v.result === result), `a message from ${id} to be ${name}`, timeoutMs)
}
