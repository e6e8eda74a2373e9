import { createHash } from 'node:crypto'
import { DEFAULT_PUBLISH_BATCH_BYTES, DEFAULT_PUBLISH_BATCH_ITEMS } from '../constants.js'
import { InvalidInputError } from '../errors.js'
import { keccak256 } from '../trie/keccak.js'

/** The items of an input from its start, anew on each call: a publish reads its input twice. */
export type ReadItems = () => AsyncIterable<Uint8Array>

export interface PublishInputInit {
  /** How the input is named in messages. @default 'input' */
  readonly name?: string
  /** Most items in one batch. @default DEFAULT_PUBLISH_BATCH_ITEMS */
  readonly batchItems?: number
  /** Bytes of items that end a batch (a batch holds at most this plus one item). @default DEFAULT_PUBLISH_BATCH_BYTES */
  readonly batchBytes?: number
}

/** Consecutive items of the input with their keccak-256 hashes (the hashes the store and the journal use). */
export interface ItemBatch {
  readonly items: readonly Uint8Array[]
  readonly hashes: readonly Uint8Array[]
}

/**
 * A publish's input, read twice and never held whole. `survey` reads it all first: every line is checked
 * before the store is touched, and the count and digest that identify the input (for the journal of a
 * resumable publish) are known before the first item is stored. `batches()` then reads it again, a batch at a
 * time, for the items to store: memory holds one batch, whatever the input's size. Each batch of the second
 * read must hash as the first read's did, so an input that changes in between (a file edited, a file
 * appended to) fails before a batch of it is stored, never storing items the digest does not describe.
 */
export class PublishInput {
  /** Items in the input. */
  readonly count: number
  /** sha256 over the items' keccak-256 hashes, hex: which input this is (the journal's `digest`). */
  readonly digest: string
  private readonly read: ReadItems
  private readonly name: string
  private readonly batchItems: number
  private readonly batchBytes: number
  /** The first read's digest of each batch, to check the second read against: 64 hex characters a batch. */
  private readonly batchDigests: readonly string[]

  private constructor(read: ReadItems, init: Required<PublishInputInit>, count: number, digest: string, batchDigests: readonly string[]) {
    this.read = read
    this.name = init.name
    this.batchItems = init.batchItems
    this.batchBytes = init.batchBytes
    this.count = count
    this.digest = digest
    this.batchDigests = batchDigests
  }

  /** Reads the whole input once, a batch at a time, for its count and digest; rejects as `read()` does. */
  static async survey(read: ReadItems, init: PublishInputInit = {}): Promise<PublishInput> {
    const settings: Required<PublishInputInit> = {
      name: init.name ?? 'input',
      batchItems: init.batchItems ?? DEFAULT_PUBLISH_BATCH_ITEMS,
      batchBytes: init.batchBytes ?? DEFAULT_PUBLISH_BATCH_BYTES
    }
    if (!Number.isSafeInteger(settings.batchItems) || settings.batchItems < 1) throw new InvalidInputError('batchItems must be 1 or more')
    if (!Number.isSafeInteger(settings.batchBytes) || settings.batchBytes < 1) throw new InvalidInputError('batchBytes must be 1 or more')
    const whole = createHash('sha256')
    const batchDigests: string[] = []
    let count = 0
    for await (const batch of batchesOf(read(), settings.batchItems, settings.batchBytes)) {
      for (const hash of batch.hashes) whole.update(hash)
      batchDigests.push(digestOf(batch.hashes))
      count += batch.items.length
    }
    return new PublishInput(read, settings, count, whole.digest('hex'), batchDigests)
  }

  /**
   * The input read again, a batch at a time, each checked against the survey: `InvalidInputError` as soon as a
   * batch differs from the first read's, or the input ends early or goes on longer. The next batch is read
   * only when the caller asks for it, so the items of one batch are all that is held.
   */
  async *batches(): AsyncGenerator<ItemBatch> {
    let index = 0
    for await (const batch of batchesOf(this.read(), this.batchItems, this.batchBytes)) {
      if (index >= this.batchDigests.length || digestOf(batch.hashes) !== this.batchDigests[index]) throw this.changed()
      index++
      yield batch
    }
    if (index !== this.batchDigests.length) throw this.changed()
  }

  private changed(): InvalidInputError {
    return new InvalidInputError(`${this.name} changed while it was being published: publish it again once it stays as it is`)
  }
}

/** `items` in batches of at most `batchItems` items, a batch ending early once it holds `batchBytes` or more. */
async function* batchesOf(items: AsyncIterable<Uint8Array>, batchItems: number, batchBytes: number): AsyncGenerator<ItemBatch> {
  let batch: Uint8Array[] = []
  let hashes: Uint8Array[] = []
  let bytes = 0
  for await (const item of items) {
    batch.push(item)
    hashes.push(keccak256(item))
    bytes += item.length
    if (batch.length >= batchItems || bytes >= batchBytes) {
      yield { items: batch, hashes }
      batch = []
      hashes = []
      bytes = 0
    }
  }
  if (batch.length > 0) yield { items: batch, hashes }
}

function digestOf(hashes: readonly Uint8Array[]): string {
  const hash = createHash('sha256')
  for (const h of hashes) hash.update(h)
  return hash.digest('hex')
}
