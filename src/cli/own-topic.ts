import type { PeerId, PrivateKey } from '@libp2p/interface'
import { UsageError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { TopicStore } from '../topic/topic-store.js'

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
 * Refuses `--publisher` naming another peer for a topic this node published. Under another publisher a topic
 * handle drops the stored items its checkpoints do not prove (see `TopicHandle`), and a node's own items are
 * nowhere else to fetch again: the flag would delete them.
 */
export async function refuseOtherPublisher(store: KVStore, topics: readonly string[], publisher: PeerId, key: PrivateKey | undefined, data: string): Promise<void> {
  for (const topic of topics) {
    const own = await ownPublisher(store, topic, key)
    if (own !== undefined && !own.equals(publisher)) {
      throw new UsageError(
        `topic ${topic} in ${data} was published by this node (${own.toString()}): --publisher ${publisher.toString()} would drop its items; give --publisher ${own.toString()} or no trust flag`
      )
    }
  }
}
