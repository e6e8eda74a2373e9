import { describe, expect, it } from 'vitest'
import { TopicTrieError } from '../../../src/errors.js'
import type { Item } from '../../../src/fsm/types.js'
import { LiveBuffer } from '../../../src/topic/sync/live-buffer.js'
import type { TrieCheckpoint } from '../../../src/topic/sync/target.js'
import { TopicWriter } from '../../../src/topic/sync/topic-writer.js'
import { equalBytes } from '../../../src/util/bytes.js'
import { makeItems, rootOf } from '../sync-world.js'

/**
 * A writer over an in-memory store that refuses any write that does not follow its head; with `source`, it can
 * also adopt a checkpoint's trie (our items `0..number` when we hold them, else the source's), as
 * `TopicStore.adoptTrie` does, rejecting with `TopicTrieError` when they do not rebuild to its root.
 */
function setup(options: { maxItems?: number; checkpoint?: () => TrieCheckpoint | undefined; source?: Item[] } = {}) {
  const stored: Item[] = []
  const adopted: number[] = []
  const source = options.source
  const gaps: [number, number][] = []
  const events: string[] = []
  let writing = 0
  const writer = new TopicWriter({
    io: {
      head: async () => stored.length - 1,
      append: async (items) => {
        // Two writes at once would both read the same head: the writer must never overlap them.
        if (writing++ > 0) throw new Error('overlapping writes')
        await new Promise((resolve) => setTimeout(resolve, 1))
        writing--
        for (const i of items) {
          if (i.n !== stored.length) throw new Error(`out of order: ${i.n} after ${stored.length - 1}`)
          stored.push({ n: i.n, data: i.data })
        }
      },
      truncate: async (head) => {
        stored.length = head + 1
      },
      root: async () => rootOf(stored),
      adopt:
        source === undefined
          ? undefined
          : async (root, number) => {
              adopted.push(number)
              const items = number < stored.length ? stored.slice(0, number + 1) : source.slice(0, number + 1)
              if (items.length !== number + 1 || !equalBytes(rootOf(items), root)) throw new TopicTrieError('no such trie')
              if (number >= stored.length) stored.splice(0, stored.length, ...items)
            }
    },
    checkpoint: options.checkpoint ?? (() => undefined),
    live: { maxItems: options.maxItems },
    onGap: (from, to) => gaps.push([from, to]),
    onVerified: (number) => events.push(`verified ${number}`),
    onMismatch: (number, kept) => events.push(`mismatch ${number} kept ${kept}`)
  })
  return { writer, stored, gaps, events, adopted }
}

const item = (n: number): Item => ({ n, data: Uint8Array.of(n & 0xff, 1) })

describe('TopicWriter with live items', () => {
  it('applies the next item, drops duplicates, holds items past a gap and follows them once a commit fills it', async () => {
    const { writer, stored, gaps } = setup()
    expect(await writer.live(item(0))).toBe('applied')
    expect(await writer.live(item(0))).toBe('duplicate')
    expect(await writer.live(item(3))).toBe('buffered')
    expect(await writer.live(item(3))).toBe('duplicate')
    expect(gaps).toEqual([[1, 2]])
    // The downloader fills 1..2; the held 3 follows in the same write turn.
    expect(await writer.commit([item(1), item(2)])).toEqual({ ok: true })
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3])
    expect(writer.buffered).toBe(0)
  })

  it('applies a held run as soon as the gap closes by a live item', async () => {
    const { writer, stored } = setup()
    await writer.live(item(0))
    await writer.live(item(2))
    await writer.live(item(3))
    expect(await writer.live(item(1))).toBe('applied')
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3])
  })

  it('keeps order under concurrent live items and commits, never overlapping writes, and bounds what it holds', async () => {
    const { writer, stored } = setup({ maxItems: 6 })
    const results = await Promise.all([
      ...[5, 1, 4, 0, 3].map((n) => writer.live(item(n))),
      writer.commit([item(0), item(1), item(2)]),
      ...[2, 9, 10, 11, 12, 13, 14].map((n) => writer.live(item(n)))
    ])
    expect(results.filter((r) => r === 'dropped').length).toBeGreaterThan(0)
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2, 3, 4, 5])
    expect(writer.buffered).toBeLessThanOrEqual(6)
  })

  it('skips items of a commit it holds already (live gossip brought them first)', async () => {
    const { writer, stored } = setup()
    await writer.live(item(0))
    await writer.live(item(1))
    expect(await writer.commit([item(0), item(1), item(2)])).toEqual({ ok: true })
    expect(stored.map((i) => i.n)).toEqual([0, 1, 2])
  })
})

describe('TopicWriter at a publisher checkpoint', () => {
  it('checks the checkpoint inside a commit before storing past it, and drops what it proves wrong', async () => {
    const items = makeItems(20, 3)
    const forged = makeItems(20, 4)
    let cp: TrieCheckpoint | undefined = { number: 4, root: rootOf(items.slice(0, 5)) }
    const { writer, stored, events } = setup({ checkpoint: () => cp })
    expect(await writer.commit(items.slice(0, 10))).toEqual({ ok: true })
    expect(events).toEqual(['verified 4'])
    // Items 10..14 are forged: the checkpoint at 14 catches them and everything after 4 goes.
    cp = { number: 14, root: rootOf(items.slice(0, 15)) }
    expect(await writer.commit(forged.slice(10, 16))).toEqual({ ok: false, fault: 'local' })
    expect(events).toEqual(['verified 4', 'mismatch 14 kept 4'])
    expect(stored).toEqual(items.slice(0, 5))
  })

  it('checks a checkpoint at our head before a live item passes it', async () => {
    const items = makeItems(12, 5)
    const { writer, stored, events } = setup({ checkpoint: () => ({ number: 9, root: rootOf(items.slice(0, 10)) }) })
    await writer.commit(items.slice(0, 10))
    expect(events).toEqual(['verified 9'])
    expect(await writer.live(items[10]!)).toBe('applied')
    expect(events).toEqual(['verified 9'])
    expect(stored).toEqual(items.slice(0, 11))
  })
})

describe('TopicWriter checking stored items against a checkpoint that arrives', () => {
  it('checks a checkpoint at our head once, dropping the items when it does not match', async () => {
    const items = makeItems(10, 6)
    let cp: TrieCheckpoint | undefined
    const { writer, stored, events } = setup({ checkpoint: () => cp })
    await writer.commit(items)
    cp = { number: 9, root: rootOf(items) }
    await writer.verifyStored()
    await writer.verifyStored()
    expect(events).toEqual(['verified 9'])
    // A later checkpoint at our head whose root is not ours.
    await writer.commit(makeItems(12, 6).slice(10))
    cp = { number: 11, root: rootOf(makeItems(12, 7)) }
    await writer.verifyStored()
    expect(events).toEqual(['verified 9', 'mismatch 11 kept 9'])
    expect(stored).toEqual(items)
  })

  it('without adopt, leaves a checkpoint below our head alone: only the root at our head can be compared', async () => {
    const items = makeItems(10, 6)
    let cp: TrieCheckpoint | undefined
    const { writer, stored, events } = setup({ checkpoint: () => cp })
    await writer.commit(items)
    cp = { number: 5, root: rootOf(items.slice(0, 6)) }
    await writer.verifyStored()
    expect(events).toEqual([])
    expect(stored).toEqual(items)
  })

  it('with adopt, checks a checkpoint below our head, and leaves one above it for the items that cross it', async () => {
    const items = makeItems(20, 6)
    let cp: TrieCheckpoint | undefined
    const { writer, stored, events, adopted } = setup({ checkpoint: () => cp, source: items })
    await writer.commit(items.slice(0, 10))
    cp = { number: 15, root: rootOf(items.slice(0, 16)) }
    await writer.verifyStored()
    expect([events, adopted, stored.length]).toEqual([[], [], 10])
    cp = { number: 5, root: rootOf(items.slice(0, 6)) }
    await writer.verifyStored()
    expect([events, adopted, stored.length]).toEqual([['verified 5'], [5], 10])
  })
})

describe('TopicWriter adopting a trie', () => {
  it('counts the adopted items as verified: the items after them are stored without checking it again', async () => {
    const items = makeItems(20, 6)
    const cp = { number: 9, root: rootOf(items.slice(0, 10)) }
    const { writer, stored, events, adopted } = setup({ checkpoint: () => cp, source: items })
    await writer.adopt(cp)
    expect(writer.verifier.verifiedThrough).toBe(9)
    expect(await writer.commit(items.slice(10, 15))).toEqual({ ok: true })
    expect(adopted).toEqual([9])
    expect(events).toEqual([])
    expect(stored).toEqual(items.slice(0, 15))
  })
})

describe('LiveBuffer bounds', () => {
  it('drops items numbered far past the head and items past the byte budget', () => {
    const buffer = new LiveBuffer({ maxItems: 10, maxBytes: 5 })
    expect(buffer.offer({ n: 1_000_000, data: Uint8Array.of(1) }, -1)).toBe('dropped')
    expect(buffer.offer({ n: 3, data: Uint8Array.of(1, 2, 3) }, -1)).toBe('buffered')
    expect(buffer.offer({ n: 4, data: Uint8Array.of(1, 2, 3) }, -1)).toBe('dropped') // 6 bytes > 5
    expect(buffer.size).toBe(1)
    expect(buffer.dropped).toBe(2)
  })

  it('hands back the run that follows the head, forgetting what the head passed', () => {
    const buffer = new LiveBuffer()
    for (const n of [2, 3, 4, 6, 7]) buffer.offer(item(n), 0)
    expect(buffer.takeRun(0)).toEqual([])
    expect(buffer.takeRun(2).map((i) => i.n)).toEqual([3, 4])
    expect(buffer.size).toBe(2)
    expect(buffer.takeRun(5).map((i) => i.n)).toEqual([6, 7])
    expect(buffer.size).toBe(0)
  })
})
