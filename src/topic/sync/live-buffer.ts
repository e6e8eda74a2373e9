import { MAX_LIVE_BUFFER_BYTES, MAX_LIVE_BUFFER_ITEMS } from '../../constants.js'
import type { Item } from '../../fsm/types.js'

/** What became of a live item: stored now (`applied`), already held, held past a gap, or dropped at the bounds. */
export type LiveOutcome = 'applied' | 'duplicate' | 'buffered' | 'dropped'

export interface LiveBufferInit {
  /** Most items held past a gap, and how far past our head an item may be to be held. @default MAX_LIVE_BUFFER_ITEMS */
  maxItems?: number
  /** @default MAX_LIVE_BUFFER_BYTES */
  maxBytes?: number
}

/**
 * Live (gossiped) items that arrived past a gap in our items, held until the downloader fills it: the pure half
 * of applying live items in order (the `TopicWriter` stores them). Bounded by count, bytes and distance from
 * our head, so a flood of items numbered far ahead cannot grow it.
 */
export class LiveBuffer {
  private readonly maxItems: number
  private readonly maxBytes: number
  private readonly held = new Map<number, Item>()
  private heldBytes = 0
  duplicates = 0
  dropped = 0

  constructor(init: LiveBufferInit = {}) {
    this.maxItems = init.maxItems ?? MAX_LIVE_BUFFER_ITEMS
    this.maxBytes = init.maxBytes ?? MAX_LIVE_BUFFER_BYTES
  }

  /** Items held. */
  get size(): number {
    return this.held.size
  }

  /**
   * Takes a live item with our head at `head`: `applied` means it is the next one and the caller stores it now;
   * otherwise it was a duplicate, is held, or was dropped.
   */
  offer(item: Item, head: number): LiveOutcome {
    if (item.n <= head || this.held.has(item.n)) {
      this.duplicates++
      return 'duplicate'
    }
    if (item.n === head + 1) return 'applied'
    if (this.held.size >= this.maxItems || this.heldBytes + item.data.length > this.maxBytes || item.n - head > this.maxItems) {
      this.dropped++
      return 'dropped'
    }
    this.held.set(item.n, item)
    this.heldBytes += item.data.length
    return 'buffered'
  }

  /**
   * The held items that follow `head` without a gap (taken out of the buffer), in order; held items at or below
   * `head` (the downloader brought them) are forgotten.
   */
  takeRun(head: number): Item[] {
    if (this.held.size === 0) return []
    for (const item of [...this.held.values()]) if (item.n <= head) this.forget(item)
    const run: Item[] = []
    for (let item = this.held.get(head + 1); item !== undefined; item = this.held.get(item.n + 1)) {
      this.forget(item)
      run.push(item)
    }
    return run
  }

  private forget(item: Item): void {
    if (this.held.delete(item.n)) this.heldBytes -= item.data.length
  }
}
