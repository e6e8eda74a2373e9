import { MAX_LIVE_BUFFER_BYTES, MAX_LIVE_BUFFER_ITEMS } from '../constants.js'
import type { Item } from '../fsm/types.js'
import { Serial } from '../util/serial.js'

export interface LiveFollowerInit {
  /** Our highest stored number, -1 when empty. */
  head(): Promise<number>
  /** Stores the next item (number head + 1). */
  append(item: Item): Promise<void>
  /** Called when an item arrives past a gap: the downloader should fetch the missing range. */
  onGap(from: number, to: number): void
  /** Most items held past a gap, and how far past our head an item may be to be held. @default MAX_LIVE_BUFFER_ITEMS */
  maxBuffered?: number
  /** @default MAX_LIVE_BUFFER_BYTES */
  maxBufferedBytes?: number
}

/**
 * Applies live (gossiped) items in order: the next number is stored at once, numbers we hold are dropped as
 * duplicates, and items past a gap wait in a bounded buffer while the downloader fills the gap; `drain()`
 * applies them once it has. Calls are serialised, so concurrent messages cannot reorder appends.
 */
export class LiveFollower {
  private readonly init: LiveFollowerInit
  private readonly maxBuffered: number
  private readonly maxBufferedBytes: number
  private readonly buffer = new Map<number, Item>()
  private bufferedBytes = 0
  /** Every call runs alone, in arrival order: two appends must not both read the same head. */
  private readonly serial = new Serial()
  duplicates = 0
  dropped = 0

  constructor(init: LiveFollowerInit) {
    this.init = init
    this.maxBuffered = init.maxBuffered ?? MAX_LIVE_BUFFER_ITEMS
    this.maxBufferedBytes = init.maxBufferedBytes ?? MAX_LIVE_BUFFER_BYTES
  }

  /** Resolves to what happened to the item. */
  receive(item: Item): Promise<'applied' | 'duplicate' | 'buffered' | 'dropped'> {
    return this.serial.run(async () => {
      const head = await this.init.head()
      if (item.n <= head || this.buffer.has(item.n)) {
        this.duplicates++
        return 'duplicate'
      }
      if (item.n === head + 1) {
        await this.init.append(item)
        await this.applyBuffered()
        return 'applied'
      }
      // Bounded by count, bytes and distance: an item numbered far ahead could never be drained.
      if (
        this.buffer.size >= this.maxBuffered ||
        this.bufferedBytes + item.data.length > this.maxBufferedBytes ||
        item.n - head > this.maxBuffered
      ) {
        this.dropped++
        return 'dropped'
      }
      this.buffer.set(item.n, item)
      this.bufferedBytes += item.data.length
      this.init.onGap(head + 1, item.n - 1)
      return 'buffered'
    })
  }

  /** Applies buffered items that now follow our head (after the downloader filled a gap). */
  drain(): Promise<void> {
    return this.serial.run(() => this.applyBuffered())
  }

  get buffered(): number {
    return this.buffer.size
  }

  private async applyBuffered(): Promise<void> {
    let head = await this.init.head()
    for (const [n, item] of [...this.buffer]) if (n <= head) this.forget(item)
    for (let next = this.buffer.get(head + 1); next !== undefined; next = this.buffer.get(head + 1)) {
      await this.init.append(next)
      this.forget(next)
      head = next.n
    }
  }

  private forget(item: Item): void {
    if (this.buffer.delete(item.n)) this.bufferedBytes -= item.data.length
  }
}
