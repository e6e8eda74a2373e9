import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { DsfgError, StoreError, UsageError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { MEMORY_STORE_SPEC } from '../store/open-store.js'
import { TopicStore } from '../topic/topic-store.js'
import { failureText } from './error-report.js'
import type { TopicTrust, TopicTrustFlags } from './flags.js'
import { writeFileAtomic } from './io.js'
import { journalPath, PublishPendingError, topicFileId } from './resumable-publish.js'

/**
 * The file in a `--data` directory naming the peer ids that published `topic` from it, one a line: `dsfg publish`
 * adds the key it signed with. A topic stays this directory's own when its node key is replaced or lost (a new
 * one is made on first use), and in a copy of the directory, which serves it as its publisher's.
 */
export function publishersPath(dir: string, topic: string): string {
  return join(dir, `published-${topicFileId(topic)}.peers`)
}

/** Records that `signer` published `topic` from `dir` (a file beside the store; `:memory:` keeps none). */
export async function recordPublisher(dir: string, topic: string, signer: PeerId): Promise<void> {
  if (dir === MEMORY_STORE_SPEC) return
  const path = publishersPath(dir, topic)
  const known = await readPublishers(path)
  if (known.includes(signer.toString())) return
  await writeFileAtomic(path, [...known, signer.toString()].map((id) => `${id}\n`).join(''))
}

async function readPublishers(path: string): Promise<string[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return []
    throw new StoreError(`cannot read ${path}: ${failureText(err)}`, { cause: err })
  }
  return text.split('\n').filter((line) => line !== '')
}

/** Refused: publishing onto a topic whose stored history another publisher signed. */
export class ForeignTopicError extends DsfgError {
  static override readonly code: string = 'ERR_FOREIGN_TOPIC'
}

/** The signer of `topic`'s newest stored checkpoint record; null when there is none, undefined when it does not open. */
async function storedSigner(store: KVStore, topic: string): Promise<PeerId | null | undefined> {
  const stored = await new TopicStore(store).getCheckpointRecord(topic)
  if (stored === null) return null
  const { openCheckpoint } = await import('../topic/checkpoint-record.js')
  try {
    return (await openCheckpoint(stored.envelope, { topic })).signer
  } catch {
    return undefined
  }
}

/**
 * The signer of `topic`'s newest stored checkpoint record when this directory published it: the record is signed
 * by `key`, or by a peer id `dsfg publish` recorded in `data` (`publishersPath`); else undefined. The modules that
 * open a record load only when there is one.
 */
export async function ownPublisher(store: KVStore, topic: string, key: PrivateKey | undefined, data: string): Promise<PeerId | undefined> {
  const signer = await storedSigner(store, topic)
  if (signer === null || signer === undefined) return undefined
  return (await isOwn(signer, topic, key, data)) ? signer : undefined
}

async function isOwn(signer: PeerId, topic: string, key: PrivateKey | undefined, data: string): Promise<boolean> {
  if (key !== undefined) {
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    if (signer.equals(peerIdFromPrivateKey(key))) return true
  }
  if (data === MEMORY_STORE_SPEC) return false
  return (await readPublishers(publishersPath(data, topic))).includes(signer.toString())
}

/**
 * For `publish`: refuses a topic whose newest stored checkpoint record another publisher signed (a topic this
 * directory follows). Its signed checkpoint would cover that publisher's items as this node's, and from then on the
 * directory would hold the topic as its own, refusing the publisher it followed.
 */
export async function refuseForeignTopic(store: KVStore, topic: string, key: PrivateKey | undefined, data: string): Promise<void> {
  const signer = await storedSigner(store, topic)
  if (signer === null || (signer !== undefined && (await isOwn(signer, topic, key, data)))) return
  const whose = signer === undefined ? 'a checkpoint record that does not open' : `the history ${signer.toString()} signed`
  throw new ForeignTopicError(
    `topic ${topic} in ${data} holds ${whose}: a publish would sign it as this node's; publish into another --data or to another topic`
  )
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
): Promise<{ trust: TopicTrust; own: boolean }> {
  // Items stored by a publish that did not finish have no checkpoint yet, so they are nobody's under any trust,
  // and items a sync appends meanwhile would be in the way of finishing it.
  const journal = data === MEMORY_STORE_SPEC ? undefined : journalPath(data, topic)
  if (journal !== undefined && existsSync(journal)) {
    throw new PublishPendingError(
      `topic ${topic} in ${data} has an unfinished publish (${journal}): run that publish again to finish it, or remove the file to leave it so`
    )
  }
  const own = await ownPublisher(store, topic, key, data)
  if (own === undefined) return { trust: flags.trust, own: false }
  // Published before `publish` kept the file, and recognised by the key: kept from now on, should the key go.
  await recordPublisher(data, topic, own)
  if (!flags.given || ('publisher' in flags.trust && flags.trust.publisher.equals(own))) return { trust: { publisher: own }, own: true }
  const flag = flags.flag ?? ('publisher' in flags.trust ? `--publisher ${flags.trust.publisher.toString()}` : `--quorum ${flags.trust.quorum}`)
  const risk = 'publisher' in flags.trust ? 'would drop its items' : 'would let peers replace its items'
  throw new UsageError(
    `topic ${topic} in ${data} was published from this directory (${own.toString()}): ${flag} ${risk}; give --publisher ${own.toString()} or no trust flag for it`
  )
}
