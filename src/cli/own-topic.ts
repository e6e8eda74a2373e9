import { existsSync } from 'node:fs'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { UsageError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { MEMORY_STORE_SPEC } from '../store/open-store.js'
import { TopicStore } from '../topic/topic-store.js'
import type { TopicTrust, TopicTrustFlags } from './flags.js'
import { journalPath, PublishPendingError } from './resumable-publish.js'

/**
 * This node's peer id when it published `topic` in `store` (the newest checkpoint record there is signed by
 * `key`), else undefined. The modules that open a record load only when there is one.
 */
export async function ownPublisher(store: KVStore, topic: string, key: PrivateKey | undefined): Promise<PeerId | undefined> {
  if (key === undefined) return undefined
  const stored = await new TopicStore(store).getCheckpointRecord(topic)
  if (stored === null) return undefined
  const [{ peerIdFromPrivateKey }, { openCheckpoint }] = await Promise.all([import('@libp2p/peer-id'), import('../topic/checkpoint-record.js')])
  try {
    return (await openCheckpoint(stored.envelope, { topic, publisher: peerIdFromPrivateKey(key) })).signer
  } catch {
    return undefined
  }
}

/**
 * The trust `serve` and `sync` give `topic`: the flags' (`trust`; `given` when a trust flag applies to this
 * topic), except for a topic this node published, whose items exist nowhere else: only the node's own signatures
 * may decide it. With no flag it is its own publisher, and any other trust is refused: under another publisher the
 * topic handle drops the stored items that publisher's checkpoints do not prove, and under a quorum peers that
 * agree on another history can replace its newest items (the tip check) and make it sign theirs. A topic with an
 * unfinished `publish` is refused whatever the flags.
 */
export async function topicTrust(
  store: KVStore,
  topic: string,
  flags: TopicTrustFlags,
  key: PrivateKey | undefined,
  data: string
): Promise<TopicTrust> {
  // Items stored by a publish that did not finish have no checkpoint yet, so they are nobody's under any trust,
  // and items a sync appends meanwhile would be in the way of finishing it.
  const journal = data === MEMORY_STORE_SPEC ? undefined : journalPath(data, topic)
  if (journal !== undefined && existsSync(journal)) {
    throw new PublishPendingError(
      `topic ${topic} in ${data} has an unfinished publish (${journal}): run that publish again to finish it, or remove the file to leave it so`
    )
  }
  const own = await ownPublisher(store, topic, key)
  if (own === undefined) return flags.trust
  if (!flags.given) return { publisher: own }
  if ('publisher' in flags.trust && flags.trust.publisher.equals(own)) return flags.trust
  const flag = 'publisher' in flags.trust ? `--publisher ${flags.trust.publisher.toString()}` : `--quorum ${flags.trust.quorum}`
  const risk = 'publisher' in flags.trust ? 'would drop its items' : 'would let peers replace its items'
  throw new UsageError(
    `topic ${topic} in ${data} was published by this node (${own.toString()}): ${flag} ${risk}; give --publisher ${own.toString()} or no trust flag for it (serve's --publisher TOPIC=PEERID names another topic's publisher alone)`
  )
}
