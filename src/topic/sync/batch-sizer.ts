import { DEFAULT_TOPIC_FIRST_BATCH_ITEMS, MAX_RESPONSE_BYTES, MAX_STREAM_WINDOW_BYTES } from '../../constants.js'

/**
 * The newest batch's weight in the moving average of item sizes. A quarter follows a topic whose items grow
 * within a few batches, while one batch of outliers moves the size by at most a quarter of its difference.
 */
const ITEM_BYTES_WEIGHT = 0.25

/**
 * Reply bytes a batch leaves for its range proof besides the proof's two edge items (which it carries whole):
 * the branch nodes from the root to both edges (at most 17 on each edge path, of 532 bytes at most). A batch of
 * items filling the whole reply came back short whenever it was proven (29 of 32 items of 64 KiB), and the rest
 * of it was asked for behind the next batch on the peer's stream: over a 2 Mbit/s link no item was stored for
 * 17 s, and `dsfg sync` gave up.
 */
const PROOF_ROOM_BYTES = 24 * 1024

export interface BatchSizerInit {
  /** Most items per batch (the queue's `batchSize`). */
  maxItems: number
  /** Items per batch before any item was seen. @default DEFAULT_TOPIC_FIRST_BATCH_ITEMS (16) */
  firstItems?: number
  /** Most payload bytes one reply carries. @default MAX_RESPONSE_BYTES */
  replyBytes?: number
  /** What a contents stream carries a round trip. @default MAX_STREAM_WINDOW_BYTES */
  windowBytes?: number
}

/**
 * Sizes a topic's download batches to what one reply carries (a server stops at `MAX_RESPONSE_BYTES`): a few
 * items until the first batch is verified, then as many items of the average size seen as fit in a reply beside
 * their range proof, at most `maxItems`. Fed verified items only, so a peer cannot steer it with bogus ones
 * (see `DEFAULT_TOPIC_FIRST_BATCH_ITEMS`).
 */
export class BatchSizer {
  private readonly maxItems: number
  private readonly replyBytes: number
  private readonly windowBytes: number
  private items: number
  /** A moving average of the size of verified items (0 before the first). */
  private averageBytes = 0

  constructor(init: BatchSizerInit) {
    this.maxItems = init.maxItems
    this.replyBytes = init.replyBytes ?? MAX_RESPONSE_BYTES
    this.windowBytes = init.windowBytes ?? MAX_STREAM_WINDOW_BYTES
    this.items = Math.min(init.maxItems, init.firstItems ?? DEFAULT_TOPIC_FIRST_BATCH_ITEMS)
  }

  /** Items per batch for the batches opened from now on. */
  get size(): number {
    return this.items
  }

  /** The moving average of verified item sizes, 0 before any. */
  get itemBytes(): number {
    return this.averageBytes
  }

  /** Takes the sizes of a verified batch into the average; true when the batch size changed. */
  record(verified: readonly { data: Uint8Array }[]): boolean {
    if (verified.length === 0) return false
    let bytes = 0
    for (const item of verified) bytes += item.data.length
    const average = bytes / verified.length
    this.averageBytes =
      this.averageBytes === 0 ? average : this.averageBytes * (1 - ITEM_BYTES_WEIGHT) + average * ITEM_BYTES_WEIGHT
    // Room for a proof: its branch nodes and its two edge items, taken as of average size.
    const itemsIn = (room: number): number => Math.floor((room - PROOF_ROOM_BYTES) / this.averageBytes) - 2
    let size = Math.max(1, Math.min(this.maxItems, itemsIn(this.replyBytes)))
    // A reply a little over a stream's window takes two round trips where one window's worth takes one: 256
    // items of 1 KiB were 263 KB against a window of 256 KiB, and a fast peer's streams, a request each,
    // carried half what they could (`bench:links --syncers topic`, 80 ms with no cap). Cut to one window when
    // that keeps at least half the items.
    const oneWindow = itemsIn(this.windowBytes)
    if (size > oneWindow && oneWindow >= size / 2) size = oneWindow
    if (size === this.items) return false
    this.items = size
    return true
  }
}
