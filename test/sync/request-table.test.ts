import { describe, expect, it } from 'vitest'
import { DepthQueue } from '../../src/sync/depth-queue.js'
import { COMPLETE, DEAD, QUEUED, REPORT_LEAVES, RequestTable } from '../../src/sync/request-table.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'

/** Path order of two paths of one length. */
function pathOrder(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

/** A random path: often sharing its first 13 nibbles (the packed prefix) with others, and sometimes past 24 nibbles. */
function randomPath(prng: Prng, common: Uint8Array): Uint8Array {
  const length = prng.int(3) === 0 ? 25 + prng.int(60) : prng.int(20)
  const path = Uint8Array.from({ length }, () => prng.int(3))
  if (length > 13 && prng.int(2) === 0) path.set(common, 0)
  return path
}

describe('RequestTable', () => {
  it('finds, keeps and removes requests like a map, reusing slots and growing past its first size', () => {
    const prng = new Prng(5)
    const table = new RequestTable()
    const common = Uint8Array.from({ length: 13 }, () => prng.int(16))
    const model = new Map<string, { slot: number; hash: Uint8Array; path: Uint8Array; parent: number; flags: number }>()
    const live: string[] = []
    const removed: Uint8Array[] = []
    for (let step = 0; step < 20_000; step++) {
      if (model.size === 0 || prng.int(3) > 0) {
        const hash = prng.bytes(32)
        // Hashes sharing their first four bytes (the index tag) with another collide in the index.
        if (model.size > 0 && prng.int(8) === 0) hash.set([...model.values()][0]!.hash.subarray(0, 4), 0)
        const path = randomPath(prng, common)
        const parent = prng.int(100) - 1
        const flags = prng.int(2) === 0 ? REPORT_LEAVES : 0
        const slot = table.add(hash, 0, path, parent, flags)
        model.set(toHex(hash), { slot, hash, path, parent, flags })
        live.push(toHex(hash))
      } else {
        const at = prng.int(live.length)
        const key = live[at]!
        live[at] = live.at(-1)!
        live.pop()
        const entry = model.get(key)!
        table.data[entry.slot] = Uint8Array.of(1)
        table.remove(entry.slot)
        expect(table.data[entry.slot]).toBeNull()
        model.delete(key)
        removed.push(entry.hash)
      }
      expect(table.size).toBe(model.size)
      if (step % 2000 === 1999) {
        const wrong: string[] = []
        for (const [key, entry] of model) {
          const slot = entry.slot
          if (table.find(entry.hash) !== slot) wrong.push(`${key}: found at ${table.find(entry.hash)}, not ${slot}`)
          const held = toHex(table.hashesOf([slot])[0]!)
          if (held !== key) wrong.push(`${key}: slot ${slot} holds ${held}`)
          if (table.pathOf(slot).join() !== entry.path.join() || table.depth[slot] !== entry.path.length) wrong.push(`${key}: path`)
          if (table.parent[slot] !== entry.parent || table.flags[slot] !== entry.flags) wrong.push(`${key}: parent or flags`)
        }
        for (const hash of removed.slice(-200)) if (!model.has(toHex(hash)) && table.find(hash) !== -1) wrong.push(`${toHex(hash)}: removed, found`)
        expect(wrong, `step ${step}`).toEqual([])
      }
    }
    expect(model.size).toBeGreaterThan(4096) // past the first size of the table
    // A hash handed out is a copy: changing it changes nothing in the table.
    const [entry] = model.values()
    const copy = table.hashesOf([entry!.slot])[0]!
    copy[0]! ^= 0xff
    expect(table.find(entry!.hash)).toBe(entry!.slot)
    expect(table.find(copy)).toBe(-1)
    table.flags[entry!.slot]! |= COMPLETE
    table.clear()
    expect(table.size).toBe(0)
    expect(table.find(entry!.hash)).toBe(-1)
  })

  it('keeps a removed slot the queue still holds until it is released, path and all', () => {
    const table = new RequestTable()
    const prng = new Prng(3)
    const long = Uint8Array.from({ length: 40 }, () => prng.int(16))
    const hash = prng.bytes(32)
    const slot = table.add(hash, 0, long, -1, QUEUED)
    table.remove(slot)
    expect(table.find(hash)).toBe(-1)
    expect(table.size).toBe(0)
    expect(table.flags[slot]).toBe(DEAD | QUEUED)
    // Not free yet: the next request takes another slot, and the queue can still order the dead one.
    expect(table.add(prng.bytes(32), 0, Uint8Array.of(1), -1, 0)).not.toBe(slot)
    expect(Array.from(table.pathOf(slot))).toEqual(Array.from(long))
    table.release(slot)
    expect(table.add(prng.bytes(32), 0, Uint8Array.of(2), -1, 0)).toBe(slot)
  })

  it('adds a branch child below its parent as `add` would with the whole path, its hash read at an offset', () => {
    const prng = new Prng(11)
    const table = new RequestTable()
    const queue = new DepthQueue(table)
    const queued: Uint8Array[] = []
    // Parents from the root down past the packed prefix (13 nibbles) and past the table's own path bytes (24).
    let parents = [{ slot: table.add(prng.bytes(32), 0, new Uint8Array(0), -1, 0), path: new Uint8Array(0) }]
    for (let depth = 1; depth <= 30; depth++) {
      const next: typeof parents = []
      for (const parent of parents) {
        for (const nibble of [prng.int(16), prng.int(16)]) {
          // A blob holding the hash at an odd offset, as a branch holds its children's.
          const blob = prng.bytes(70)
          const at = 1 + prng.int(37)
          const hash = blob.slice(at, at + 32)
          const path = Uint8Array.of(...parent.path, nibble)
          const slot = table.addBelow(blob, at, parent.slot, nibble, QUEUED)
          expect(table.findAt(blob, at)).toBe(slot)
          expect(table.find(hash)).toBe(slot)
          expect(Array.from(table.pathOf(slot))).toEqual(Array.from(path))
          expect(table.depth[slot]).toBe(depth)
          expect(table.parent[slot]).toBe(parent.slot)
          expect(toHex(table.hashesOf([slot])[0]!)).toBe(toHex(hash))
          next.push({ slot, path })
          queue.push(slot)
          queued.push(path)
          // Beside it, one `add` made at a path of the same depth, close to it: the queue orders both alike only
          // if `addBelow` packs the path's prefix as `add` does.
          const near = path.slice()
          near[prng.int(depth)] = prng.int(16)
          queue.push(table.add(prng.bytes(32), 0, near, -1, QUEUED))
          queued.push(near)
        }
      }
      // Keep the table small: two lines of descent.
      parents = next.slice(0, 2)
    }
    queued.sort((a, b) => b.length - a.length || pathOrder(a, b))
    for (const expected of queued) expect(Array.from(table.pathOf(queue.pop()!))).toEqual(Array.from(expected))
    expect(queue.pop()).toBeUndefined()
  })

  it('orders a depth queue deepest first, then by whole path (past the packed 13 nibbles and past 24)', () => {
    const prng = new Prng(9)
    for (let round = 0; round < 20; round++) {
      const table = new RequestTable()
      const queue = new DepthQueue(table)
      const common = Uint8Array.from({ length: 13 }, () => prng.int(16))
      const paths: Uint8Array[] = []
      for (let i = 0; i < 300; i++) {
        const path = randomPath(prng, common)
        paths.push(path)
        queue.push(table.add(prng.bytes(32), 0, path, -1, 0))
      }
      paths.sort((a, b) => b.length - a.length || pathOrder(a, b))
      for (const expected of paths) expect(Array.from(table.pathOf(queue.pop()!)), `round ${round}`).toEqual(Array.from(expected))
      expect(queue.pop()).toBeUndefined()
    }
  })
})
