import { describe, expect, it } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { LiveFollower } from '../../src/topic/live-follower.js'

function setup(maxBuffered?: number) {
  const stored: Item[] = []
  const gaps: [number, number][] = []
  const follower = new LiveFollower({
    head: async () => stored.length - 1,
    append: async (item) => {
      if (item.n !== stored.length) throw new Error('out of order')
      stored.push(item)
    },
    onGap: (from, to) => gaps.push([from, to]),
    maxBuffered
  })
  return { follower, stored, gaps }
}

const item = (n: number): Item => ({ n, data: Uint8Array.of(n & 0xff, 1) })

describe('LiveFollower', () => {
  it('applies the next item, drops duplicates, buffers past a gap and reports it', async () => {
    const { follower, stored, gaps } = setup()
    expect(await follower.receive(item(0))).toBe('applied')
    expect(await follower.receive(item(0))).toBe('duplicate')
    expect(await follower.receive(item(3))).toBe('buffered')
    expect(await follower.receive(item(3))).toBe('duplicate')
    expect(gaps).toEqual([[1, 2]])
    // The downloader fills 1..2; the buffered 3 follows on drain.
    stored.push(item(1), item(2))
    await follower.drain()
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3])
    expect(follower.buffered).toBe(0)
    expect(follower.duplicates).toBe(2)
  })

  it('applies a buffered run as soon as the gap closes by a live item', async () => {
    const { follower, stored } = setup()
    await follower.receive(item(0))
    await follower.receive(item(2))
    await follower.receive(item(3))
    expect(await follower.receive(item(1))).toBe('applied')
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3])
  })

  it('keeps order under concurrent deliveries and bounds its buffer', async () => {
    const { follower, stored } = setup(6)
    const results = await Promise.all([5, 1, 4, 0, 3, 2, 2, 9, 10, 11, 12, 13, 14].map((n) => follower.receive(item(n))))
    expect(results.filter((r) => r === 'dropped').length).toBeGreaterThan(0)
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3, 4, 5])
    expect(follower.buffered).toBeLessThanOrEqual(6)
  })
})

describe('LiveFollower bounds', () => {
  it('drops items numbered far past the head and items past the byte budget', async () => {
    const stored: Item[] = []
    const follower = new LiveFollower({
      head: async () => stored.length - 1,
      append: async (i) => {
        stored.push(i)
      },
      onGap: () => undefined,
      maxBuffered: 10,
      maxBufferedBytes: 5
    })
    expect(await follower.receive({ n: 1_000_000, data: Uint8Array.of(1) })).toBe('dropped')
    expect(await follower.receive({ n: 3, data: Uint8Array.of(1, 2, 3) })).toBe('buffered')
    expect(await follower.receive({ n: 4, data: Uint8Array.of(1, 2, 3) })).toBe('dropped') // 6 bytes > 5
    expect(follower.buffered).toBe(1)
  })
})
