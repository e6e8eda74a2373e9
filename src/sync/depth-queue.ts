import type { Nibbles } from '../trie/nibbles.js'

/**
 * The order of the items (numbers: the trie sync's request slots) a `DepthQueue` holds: each has a depth (its
 * path's length), and items of one depth are ordered by path.
 */
export interface QueueOrder {
  depthOf(item: number): number
  /** Whether item `a`'s path comes before item `b`'s; both are of one depth. */
  before(a: number, b: number): boolean
}

/** Nibbles packed into a prefix: 13 × 4 = 52 bits, exact in a double. */
export const PREFIX_NIBBLES = 13

/** A path's first 13 nibbles as one number, so most comparisons within a depth are one subtraction. */
export function pathPrefix(path: Nibbles): number {
  let prefix = 0
  for (let i = 0; i < PREFIX_NIBBLES; i++) prefix = prefix * 16 + (path[i] ?? 0)
  return prefix
}

/**
 * The trie sync's missing-node queue: deeper first, so the partial trie in memory stays a narrow path
 * (depth-first search), then lexicographic path order, so siblings complete left to right and taking one node
 * at a time walks the trie in pre-order. go-ethereum packs the same order into `depth << 56 | inverted first
 * 14 nibbles`; comparing whole paths also orders ties beyond 14 nibbles.
 *
 * One binary heap per depth instead of one heap of everything: the depth comparison goes away, each heap is a
 * fraction of the whole, and a push below the deepest depth never touches it. A single heap cost the trie sync
 * about 2 µs of CPU a node (its sift-downs over a queue of thousands).
 */
export class DepthQueue {
  private readonly order: QueueOrder
  /** `heaps[d]`: the queued items of depth `d`, a binary heap in path order. */
  private readonly heaps: number[][] = []
  /** At least the deepest depth holding an item (`peek` lowers it past emptied heaps); -1 when none. */
  private deepest = -1
  private count = 0

  constructor(order: QueueOrder) {
    this.order = order
  }

  get size(): number {
    return this.count
  }

  push(item: number): void {
    const depth = this.order.depthOf(item)
    while (this.heaps.length <= depth) this.heaps.push([])
    const heap = this.heaps[depth]!
    let i = heap.length
    heap.push(item)
    while (i > 0) {
      const up = (i - 1) >> 1
      const parent = heap[up]!
      if (!this.order.before(item, parent)) break
      heap[i] = parent
      i = up
    }
    heap[i] = item
    if (depth > this.deepest) this.deepest = depth
    this.count++
  }

  /** The first item: of the deepest depth, the first in path order. */
  peek(): number | undefined {
    while (this.deepest >= 0 && this.heaps[this.deepest]!.length === 0) this.deepest--
    return this.deepest < 0 ? undefined : this.heaps[this.deepest]![0]
  }

  /** Removes and returns the first item. */
  pop(): number | undefined {
    return this.peek() === undefined ? undefined : this.popAt(this.deepest)
  }

  /** The deepest depth that may hold items (-1: none); every depth from 0 to it may be read with `peekAt`. */
  get maxDepth(): number {
    this.peek()
    return this.deepest
  }

  /** The first item of depth `depth` in path order. */
  peekAt(depth: number): number | undefined {
    return this.heaps[depth]?.[0]
  }

  /** Removes and returns the first item of depth `depth`. */
  popAt(depth: number): number | undefined {
    const heap = this.heaps[depth]
    const top = heap?.[0]
    if (heap === undefined || top === undefined) return undefined
    const last = heap.pop()!
    this.count--
    const n = heap.length
    if (n === 0) return top
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && this.order.before(heap[child + 1]!, heap[child]!)) child++
      if (!this.order.before(heap[child]!, last)) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = last
    return top
  }

  clear(): void {
    this.heaps.length = 0
    this.deepest = -1
    this.count = 0
  }
}
