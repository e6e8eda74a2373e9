import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { DsfgError, StoreError, UsageError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { MEMORY_STORE_SPEC } from '../store/open-store.js'
import { TopicStore } from '../topic/topic-store.js'
import { failureText } from './error-report.js'
import type { TopicTrust, TopicTrustFlags } from './flags.js'
import { readSmallFile, UnreadableFileError, writeFileAtomic } from './io.js'
import { journalHolds, journalPath, PublishPendingError, pendingPublish, topicFileId } from './resumable-publish.js'

/**
 * The file in a `--data` directory naming the peer ids that published `topic` from it, one a line: `dsfg publish`
 * adds the key it signed with. A topic stays this directory's own when its node key is replaced or lost (a new
 * one is made on first use), and in a copy of the directory, which serves it as its publisher's.
 */
export function publishersPath(dir: string, topic: string): string {
  return join(dir, `published-${topicFileId(topic)}.peers`)
}

/** Longest keys file read: some 1,200 peer ids, far more than a directory publishes a topic with. */
const MAX_PUBLISHERS_FILE_BYTES = 64 * 1024

/** Records that `signer` published `topic` from `dir` (a file beside the store; `:memory:` keeps none). */
export async function recordPublisher(dir: string, topic: string, signer: PeerId): Promise<void> {
  if (dir === MEMORY_STORE_SPEC) return
  const path = publishersPath(dir, topic)
  const known = await readPublishers(path, topic)
  if (known.includes(signer.toString())) return
  await writeFileAtomic(path, [...known, signer.toString()].map((id) => `${id}\n`).join(''))
}

/**
 * The peer ids in the keys file at `path` (none when there is no file), a regular file of at most
 * MAX_PUBLISHERS_FILE_BYTES (`readSmallFile`: a named pipe put in its place had `serve` wait on it for ever).
 */
async function readPublishers(path: string, topic: string): Promise<string[]> {
  const what = `${path}, the keys that published topic ${topic}`
  let bytes: Uint8Array | undefined
  try {
    bytes = await readSmallFile(path, MAX_PUBLISHERS_FILE_BYTES)
  } catch (err) {
    if (err instanceof UnreadableFileError) throw new StoreError(`${what}, ${err.message}`)
    throw new StoreError(`cannot read ${what}: ${failureText(err)}`, { cause: err })
  }
  if (bytes === undefined) return []
  const text = new TextDecoder().decode(bytes)
  const { peerIdFromString } = await import('@libp2p/peer-id')
  const ids = text.split('\n').map((line) => line.trim())
  for (const id of ids) {
    if (id === '') continue
    try {
      peerIdFromString(id)
    } catch {
      // A damaged file would otherwise drop the topic's protection without a word.
      throw new StoreError(`${what}, holds ${JSON.stringify(id.slice(0, 60))}, not a peer id`)
    }
  }
  return ids.filter((id) => id !== '')
}

/** Refused: a publish onto a topic whose stored history this node's key did not sign (see `refuseForeignTopic`). */
export class ForeignTopicError extends DsfgError {
  static override readonly code: string = 'ERR_FOREIGN_TOPIC'
}

/**
 * The signer of `topic`'s newest stored checkpoint record; null when there is none, undefined when it does not open.
 * The modules that open a record load only when there is one.
 */
async function storedSigner(topics: TopicStore, topic: string): Promise<PeerId | null | undefined> {
  const stored = await topics.getCheckpointRecord(topic)
  if (stored === null) return null
  const { openCheckpoint } = await import('../topic/checkpoint-record.js')
  try {
    return (await openCheckpoint(stored.envelope, { topic })).signer
  } catch {
    return undefined
  }
}

/** The peer id of `key` (undefined without one). */
async function peerIdOf(key: PrivateKey | undefined): Promise<PeerId | undefined> {
  if (key === undefined) return undefined
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  return peerIdFromPrivateKey(key)
}

/**
 * Whether `signer` (of `topic`'s newest stored checkpoint record) is this directory's own publisher: `current`,
 * the peer id of its key, or one `dsfg publish` recorded in `data` (`publishersPath`; read only when needed).
 */
async function isOwn(signer: PeerId, topic: string, current: PeerId | undefined, data: string): Promise<boolean> {
  if (current?.equals(signer) === true) return true
  if (data === MEMORY_STORE_SPEC) return false
  return (await readPublishers(publishersPath(data, topic), topic)).includes(signer.toString())
}

/**
 * For `publish`: refuses a topic this node's key cannot go on publishing. Its newest stored record must be signed
 * by `key` itself. One another publisher signed (a topic this directory follows) would have that history signed as
 * this node's, and the directory would then hold the topic as its own, refusing the publisher it followed; one
 * signed by a key this directory published with before (`node.key` since replaced) would move the topic to a new
 * publisher, whose checkpoints the peers trusting the first refuse. Items with no record at all (synced under a
 * quorum, where no record is kept) are refused too, unless an unfinished publish here left them (its journal).
 */
export async function refuseForeignTopic(store: KVStore, topic: string, key: PrivateKey | undefined, data: string): Promise<void> {
  // Read first: one that cannot be read fails the publish before it stores anything.
  const publishers = data === MEMORY_STORE_SPEC ? [] : await readPublishers(publishersPath(data, topic), topic)
  const topics = new TopicStore(store)
  const signer = await storedSigner(topics, topic)
  const advice = 'publish into another --data or to another topic'
  const current = await peerIdOf(key)
  if (signer === null) {
    const head = await topics.head(topic)
    if (head < 0) return
    // The first publish to the topic, interrupted before it signed anything, finishes; a journal written by hand
    // over items synced from peers does not make them this node's (`journalHolds`).
    const pending = data === MEMORY_STORE_SPEC ? undefined : await pendingPublish(data, topic)
    if (pending !== undefined && (await journalHolds(topics, topic, pending))) return
    const restore =
      current !== undefined && publishers.includes(current.toString())
        ? ` (if they are this key's own, from a backup, sync them with --publisher ${current.toString()} first)`
        : ''
    throw new ForeignTopicError(
      `topic ${topic} in ${data} holds ${head + 1} items that no checkpoint of this directory signs (synced from peers?): a publish would sign them as this node's; ${advice}${restore}`
    )
  }
  if (signer === undefined) throw new ForeignTopicError(`topic ${topic} in ${data} holds a checkpoint record that does not open; ${advice}`)
  if (current?.equals(signer) === true) return
  if (publishers.includes(signer.toString())) {
    throw new ForeignTopicError(
      `topic ${topic} in ${data} was published with the key of ${signer.toString()}, and ${data}/node.key is now ${current?.toString() ?? 'absent'}: peers trusting ${signer.toString()} would refuse what this key signs; put that key back in node.key to publish more`
    )
  }
  throw new ForeignTopicError(`topic ${topic} in ${data} holds the history ${signer.toString()} signed: a publish would sign it as this node's; ${advice}`)
}

/**
 * The trust `serve` and `sync` give `topic`: the flags' (`trust`; `given` when a trust flag applies to this
 * topic), except for a topic published from this directory (`isOwn`), whose items exist nowhere else: only
 * the key it was published with may decide it. With no flag it is its own publisher, and any other trust is refused: under another publisher the
 * topic handle drops the stored items that publisher's checkpoints do not prove, and under a quorum peers that
 * agree on another history can replace its newest items (the tip check) and make it sign theirs. A topic with an
 * unfinished `publish` is refused whatever the flags.
 */
export async function topicTrust(
  store: KVStore,
  topic: string,
  flags: TopicTrustFlags,
  key: PrivateKey | undefined,
  data: string,
  command: 'serve' | 'sync'
): Promise<{ trust: TopicTrust; own: boolean }> {
  // Items stored by a publish that did not finish have no checkpoint yet, so they are nobody's under any trust,
  // and items a sync appends meanwhile would be in the way of finishing it.
  const journal = data === MEMORY_STORE_SPEC ? undefined : journalPath(data, topic)
  if (journal !== undefined && existsSync(journal)) {
    throw new PublishPendingError(
      `topic ${topic} in ${data} has an unfinished publish (${journal}): run that publish again to finish it, or remove the file to leave it so`
    )
  }
  const signer = await storedSigner(new TopicStore(store), topic)
  const current = await peerIdOf(key)
  if (signer === null) return { trust: (await restoredTrust(topic, flags, current, data)) ?? flags.trust, own: false }
  if (signer === undefined || !(await isOwn(signer, topic, current, data))) return { trust: flags.trust, own: false }
  const own = signer
  // Published before `publish` kept the file, and recognised by the key: kept from now on, should the key go. Only
  // a help for later, so a directory this cannot write to is served all the same. One recognised by the file is in it.
  if (current?.equals(own) === true) await recordPublisher(data, topic, own).catch(() => {})
  if (!flags.given || ('publisher' in flags.trust && flags.trust.publisher.equals(own))) return { trust: { publisher: own }, own: true }
  const flag = flags.flag ?? ('publisher' in flags.trust ? `--publisher ${flags.trust.publisher.toString()}` : `--quorum ${flags.trust.quorum}`)
  const risk = 'publisher' in flags.trust ? 'would drop its items' : 'would let peers replace its items'
  throw new UsageError(
    `topic ${topic} in ${data} was published from this directory (${own.toString()}): ${flag} ${risk}; give ${command === 'serve' ? `--publisher ${topic}=${own.toString()}` : `--publisher ${own.toString()}`} or no trust flag for it`
  )
}

/**
 * With no trust flag, a topic this directory published under its current key whose store holds no record of it any
 * more (the store lost or replaced, `node.key` and the keys file kept): its publisher is still this key, not a quorum
 * of one. Its record comes from peers then (a backup server), as for any followed topic.
 */
async function restoredTrust(topic: string, flags: TopicTrustFlags, current: PeerId | undefined, data: string): Promise<TopicTrust | undefined> {
  if (flags.given || current === undefined || data === MEMORY_STORE_SPEC) return undefined
  return (await readPublishers(publishersPath(data, topic), topic)).includes(current.toString()) ? { publisher: current } : undefined
}
