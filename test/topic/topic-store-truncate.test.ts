import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory-store.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { Prng } from '../../src/util/prng.js'
import { topicRoot } from '../helpers/topic-data.js'

describe('TopicStore.truncate', () => {
  it('drops items above the new head and the checkpoint above it; appends then continue the right trie', async () => {
    const prng = new Prng(8)
    const items = Array.from({ length: 40 }, () => prng.bytes(1 + prng.int(80)))
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('t', items)
    await topics.checkpoint('t')
    await topics.truncate('t', 24)
    expect(await topics.head('t')).toBe(24)
    expect(await topics.getCheckpoint('t')).toBeNull()
    expect(await topics.getContents('t', 20, 10)).toHaveLength(5)
    expect(await topics.getItem('t', 25)).toBeNull()
    const replacement = Array.from({ length: 10 }, () => prng.bytes(33))
    await topics.appendMany('t', replacement)
    const expected = [...items.slice(0, 25), ...replacement]
    expect(await topics.head('t')).toBe(34)
    expect(await topics.root('t')).toEqual(topicRoot(expected))
    // Truncating to the head or above changes nothing; to -1 empties the topic.
    await topics.truncate('t', 40)
    expect(await topics.head('t')).toBe(34)
    await topics.truncate('t', -1)
    expect(await topics.head('t')).toBe(-1)
    expect(await topics.getCurrentTopicState('t')).toBeNull()
  })

  it('forgets the root of the items it drops: as many new items get their own root, and a checkpoint just above goes', async () => {
    const prng = new Prng(9)
    const items = Array.from({ length: 40 }, () => prng.bytes(1 + prng.int(80)))
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('t', items)
    await topics.checkpoint('t') // the root of items 0..39, kept
    await topics.truncate('t', 38)
    expect(await topics.getCheckpoint('t')).toBeNull() // at 39, one above the new head
    await topics.truncate('t', 24)
    const replacement = Array.from({ length: 15 }, () => prng.bytes(33))
    await topics.appendMany('t', replacement)
    expect(await topics.head('t')).toBe(39)
    const root = topicRoot([...items.slice(0, 25), ...replacement])
    expect(await topics.root('t')).toEqual(root)
    expect((await topics.checkpoint('t'))?.root).toEqual(root)
  })
})
