import { describe, expect, it } from 'vitest'
import { DepthQueue, pathPrefix, type QueueOrder } from '../../src/sync/depth-queue.js'
import { Prng } from '../../src/util/prng.js'

interface Entry {
  path: Uint8Array
  prefix: number
  id: number
}

/** The order the queue promises: deeper first, then lexicographic path order. */
function first(a: Entry, b: Entry): number {
  if (a.path.length !== b.path.length) return b.path.length - a.path.length
  for (let i = 0; i < a.path.length; i++) if (a.path[i] !== b.path[i]) return a.path[i]! - b.path[i]!
  return 0
}

/** The entries the queue holds, by their ids: paths compared whole (the queue's own order packs a prefix). */
function orderOf(entries: Entry[]): QueueOrder {
  return {
    depthOf: (id) => entries[id]!.path.length,
    before: (a, b) => {
      const x = entries[a]!
      const y = entries[b]!
      if (x.prefix !== y.prefix) return x.prefix < y.prefix
      return first(x, y) < 0
    }
  }
}

describe('DepthQueue', () => {
  it('pops deepest first, then in path order, under random pushes and pops (paths past the packed 13 nibbles too)', () => {
    const prng = new Prng(41)
    for (let round = 0; round < 40; round++) {
      const entries: Entry[] = []
      const queue = new DepthQueue(orderOf(entries))
      const model: Entry[] = []
      // Paths share prefixes often (a few nibble values).
      // Half of them start with the same 13 nibbles, the packed prefix, and differ only after it.
      const common = Uint8Array.from({ length: 13 }, () => prng.int(16))
      const entry = (id: number): Entry => {
        const tail = Uint8Array.from({ length: prng.int(6) }, () => prng.int(3))
        const path = prng.int(2) === 0 ? Uint8Array.from([...common, ...tail]) : Uint8Array.from({ length: prng.int(20) }, () => prng.int(3))
        return { path, prefix: pathPrefix(path), id }
      }
      for (let step = 0, id = 0; step < 400; step++) {
        if (model.length === 0 || prng.int(3) > 0) {
          const e = entry(id++)
          entries.push(e)
          queue.push(e.id)
          model.push(e)
        } else {
          model.sort(first)
          const expected = model.shift()!
          const popped = entries[queue.pop()!]!
          // Equal paths may come out in either order; their paths must match.
          expect(Array.from(popped.path), `round ${round} step ${step}`).toEqual(Array.from(expected.path))
          if (popped !== expected) model.splice(model.indexOf(popped), 1, expected)
        }
        expect(queue.size).toBe(model.length)
      }
      model.sort(first)
      for (const expected of model) expect(Array.from(entries[queue.pop()!]!.path)).toEqual(Array.from(expected.path))
      expect(queue.pop()).toBeUndefined()
      expect(queue.peek()).toBeUndefined()
    }
  })
})

describe('DepthQueue by depth', () => {
  it('takes each depth in path order through peekAt and popAt, with pushes mostly in path order, late ones and ties', () => {
    const prng = new Prng(77)
    for (let round = 0; round < 3; round++) {
      const entries: Entry[] = []
      const queue = new DepthQueue(orderOf(entries))
      const model = new Map<number, Entry[]>()
      // A counter per depth walks the paths upwards, so most pushes come after the last one of their depth.
      const next = [0, 0, 0, 0]
      const push = (depth: number): void => {
        // Nine in ten at or after the last of their depth (a tie at times), one anywhere before.
        const inOrder = prng.int(10) > 0
        if (inOrder) next[depth]! += prng.int(3)
        const value = inOrder ? next[depth]! : prng.int(next[depth]! + 1)
        const path = Uint8Array.from({ length: depth + 14 }, (_, i) => (i < depth + 10 ? 0 : (value >> (4 * (depth + 13 - i))) & 15))
        const e: Entry = { path, prefix: pathPrefix(path), id: entries.length }
        entries.push(e)
        queue.push(e.id)
        const list = model.get(path.length) ?? []
        list.push(e)
        model.set(path.length, list)
      }
      const takeAt = (length: number): void => {
        const list = model.get(length) ?? []
        const peeked = queue.peekAt(length)
        const popped = queue.popAt(length)
        if (popped !== peeked) expect(popped).toBe(peeked)
        if (list.length === 0) {
          expect(popped).toBeUndefined()
          return
        }
        if (popped === undefined) expect.fail(`depth ${length} holds ${list.length} items and popAt gave none`)
        let least = 0
        for (let i = 1; i < list.length; i++) if (first(list[i]!, list[least]!) < 0) least = i
        const got = entries[popped]!
        // Equal paths may come out in either order. (expect only on a mismatch: thousands of calls were slow.)
        if (first(got, list[least]!) !== 0) expect(Array.from(got.path)).toEqual(Array.from(list[least]!.path))
        const at = list.indexOf(got)
        if (at < 0) expect.fail(`popped ${got.id}, which depth ${length} does not hold`)
        list.splice(at, 1)
      }
      // Hundreds of items in a depth (some 3,000 queued in all), taken slowly at first.
      for (let step = 0; step < 10_000; step++) {
        const depth = prng.int(4)
        if (prng.int(step < 6_000 ? 4 : 2) > 0) push(depth)
        else takeAt(depth + 14)
      }
      for (const length of [17, 16, 15, 14]) while ((model.get(length) ?? []).length > 0) takeAt(length)
      expect(queue.size).toBe(0)
      expect(queue.peek()).toBeUndefined()
      expect(queue.popAt(14)).toBeUndefined()
    }
  })
})
