import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DsfgError } from '../errors.js'
import type { TopicStore } from '../topic/topic-store.js'
import { keccak256 } from '../trie/keccak.js'
import { equalBytes } from '../util/bytes.js'
import { toHex } from '../util/hex.js'
import { failureText } from './error-report.js'
import { readSmallFile, UnreadableFileError, writeFileAtomic } from './io.js'
import type { PublishInput } from './publish-input.js'

/** Stored hashes read in one call when checking what an interrupted publish stored. */
const HASHES_PER_READ = 4096

/** An unfinished publish of another input is in the way, or the topic changed under an unfinished one. */
export class PublishPendingError extends DsfgError {
  static override readonly code: string = 'ERR_PUBLISH_PENDING'
}

/**
 * What a running `publish` leaves in its `--data` directory until it is done: which input (a digest of its
 * items) goes to which topic from which item number. A publish killed midway (or failing on a full disk) has
 * stored some of the items; the next run of the same input finds the record, checks that the items stored
 * since `from` are the input's first ones, and appends only the rest. Without the record a rerun could not
 * tell an interrupted publish from a wish to publish the same items again.
 */
export interface PublishJournal {
  readonly topic: string
  /** The number the input's first item gets: the topic's head + 1 when the publish started. */
  readonly from: number
  /** Items in the input. */
  readonly count: number
  /** sha256 over the items' keccak-256 hashes, hex: which input this is. */
  readonly digest: string
}

/** The journal's file in `dir`: one per topic (the name holds a hash of the topic, which may be any string). */
export function journalPath(dir: string, topic: string): string {
  return join(dir, `publish-${topicFileId(topic)}.pending`)
}

/** What names a topic's files in a `--data` directory: 16 hex digits of a hash of its name, which may be any string. */
export function topicFileId(topic: string): string {
  return toHex(keccak256(new TextEncoder().encode(topic)).subarray(0, 8)).slice(2)
}

/** The unfinished publish `dir` holds for `topic`, or undefined; an unreadable or malformed journal is a `PublishPendingError`. */
export function pendingPublish(dir: string, topic: string): Promise<PublishJournal | undefined> {
  return readJournal(journalPath(dir, topic))
}

/** Longest journal read: a few hundred bytes of JSON are what `publish` writes. */
const MAX_JOURNAL_BYTES = 64 * 1024

async function readJournal(path: string): Promise<PublishJournal | undefined> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await readSmallFile(path, MAX_JOURNAL_BYTES)
  } catch (err) {
    if (err instanceof UnreadableFileError) throw new PublishPendingError(`${path} ${err.message} (remove it if no publish is to be finished)`)
    throw new PublishPendingError(`cannot read ${path}: ${failureText(err)}`, { cause: err })
  }
  if (bytes === undefined) return undefined
  const text = new TextDecoder().decode(bytes)
  try {
    const journal = JSON.parse(text) as PublishJournal
    if (typeof journal.topic === 'string' && Number.isSafeInteger(journal.from) && Number.isSafeInteger(journal.count) && typeof journal.digest === 'string') {
      return journal
    }
  } catch {
    // Reported below, like any other content that is not a journal.
  }
  throw new PublishPendingError(`${path} is not a publish journal (remove it if no publish is to be finished)`)
}

async function writeJournal(path: string, journal: PublishJournal): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(journal)).catch((err: unknown) => {
    throw new PublishPendingError(`cannot write ${path}: ${failureText(err)}`, { cause: err })
  })
}

export interface PublishItemsOptions {
  /** The `--data` directory that keeps the journal; without one (`:memory:`) nothing outlives the process anyway. */
  readonly journalDir?: string
  /** Called after each stored batch: items of the input stored so far (by this run or an interrupted one). */
  readonly onProgress?: (published: number, total: number) => void
  readonly signal?: AbortSignal
}

/** Where the input's items went: numbers `from…from+count-1`; `resumed` of them were stored by an earlier run. */
export interface PublishedItems {
  readonly from: number
  readonly resumed: number
}

/**
 * Appends the input's items to `topic` as its next items, once each, in order, however many runs it takes: a
 * run that stops partway (killed, a failed store write) leaves a journal, and the next run with the same input
 * appends only those not stored yet. The input is read a batch at a time (see `PublishInput`), so memory holds
 * one batch of items. Call `finishPublish` once the checkpoint is recorded.
 */
export async function publishItems(
  topics: TopicStore,
  topic: string,
  input: PublishInput,
  options: PublishItemsOptions = {}
): Promise<PublishedItems> {
  const { count, digest } = input
  const path = options.journalDir === undefined ? undefined : journalPath(options.journalDir, topic)
  const pending = path === undefined ? undefined : await readJournal(path)
  const head = await topics.head(topic, { signal: options.signal })
  let from = head + 1
  let stored = 0
  const changed = (): PublishPendingError =>
    new PublishPendingError(
      `topic ${JSON.stringify(topic)} changed since an interrupted publish of this input (its items from ${from} are not the input's): remove ${path} to publish it anew`
    )
  if (pending !== undefined && pending.digest === digest && pending.count === count) {
    from = pending.from
    stored = head - from + 1
    if (stored < 0 || stored > count) throw changed()
  } else if (pending !== undefined && head < pending.from + pending.count - 1) {
    const done = Math.max(0, head - pending.from + 1)
    throw new PublishPendingError(
      `topic ${JSON.stringify(topic)}: an interrupted publish of another input stored ${done} of its ${pending.count} items; publish that input again to finish it, or remove ${path} to leave it so`
    )
  }
  // A journal of another input whose items are all stored only missed its checkpoint: ours replaces it.
  if (path !== undefined && stored === 0 && count > 0) await writeJournal(path, { topic, from, count, digest })
  options.onProgress?.(stored, count)
  let read = 0
  for await (const { items, hashes } of input.batches()) {
    options.signal?.throwIfAborted()
    const end = read + items.length
    // What an interrupted run stored must be this input's items (the topic may have changed since), checked
    // before anything more is stored: the batches come in order.
    const kept = Math.max(0, Math.min(end, stored) - read)
    if (kept > 0 && !(await storedAre(topics, topic, from + read, hashes.slice(0, kept)))) throw changed()
    if (kept < items.length) {
      // putMany, not appendMany: it stores at `from + …` or nothing, so a topic that moved on is never appended to.
      await topics.putMany(topic, from + read + kept, items.slice(kept), { hashes: hashes.slice(kept), signal: options.signal })
      options.onProgress?.(end, count)
    }
    read = end
  }
  return { from, resumed: stored }
}

/** Removes the journal once the items are stored and checkpointed: a later run of the same input publishes it again. */
export async function finishPublish(journalDir: string | undefined, topic: string): Promise<void> {
  if (journalDir !== undefined) await rm(journalPath(journalDir, topic), { force: true })
}

/**
 * Whether `journal` can be what stored all of `topic`'s items, none of them checkpointed yet: the first publish to the
 * topic (from 0). One whose items are not all stored yet can only be finished with its own input, which is checked
 * against what is stored; one whose items are all stored must have stored exactly these (its digest), so that a
 * journal written by hand cannot claim items synced from peers.
 */
export async function journalHolds(topics: TopicStore, topic: string, journal: PublishJournal): Promise<boolean> {
  if (journal.topic !== topic || journal.from !== 0) return false
  const head = await topics.head(topic)
  if (head < journal.count - 1) return true
  if (head !== journal.count - 1) return false
  const whole = createHash('sha256')
  for (let from = 0; from <= head; from += HASHES_PER_READ) {
    for (const hash of await topics.getContentHashes(topic, from, Math.min(head, from + HASHES_PER_READ - 1))) whole.update(hash)
  }
  return whole.digest('hex') === journal.digest
}

/** Whether the topic's items `from…` have exactly these hashes. */
async function storedAre(topics: TopicStore, topic: string, from: number, hashes: readonly Uint8Array[]): Promise<boolean> {
  for (let i = 0; i < hashes.length; i += HASHES_PER_READ) {
    const end = Math.min(hashes.length, i + HASHES_PER_READ)
    const stored = await topics.getContentHashes(topic, from + i, from + end - 1)
    if (stored.length !== end - i || stored.some((h, j) => !equalBytes(h, hashes[i + j]!))) return false
  }
  return true
}
