import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory-store.js'
import { kvStoreSuite } from './kv-store-suite.js'

kvStoreSuite('MemoryStore', { create: async () => new MemoryStore() })

describe('MemoryStore.largestValueBytes', () => {
  it('knows the longest value it ever held, from a put or a batch (servers size their reads by it)', async () => {
    const store = new MemoryStore()
    expect(store.largestValueBytes()).toBe(0)
    await store.put(Uint8Array.of(1), new Uint8Array(300))
    expect(store.largestValueBytes()).toBe(300)
    await store.batch([{ type: 'put', key: Uint8Array.of(2), value: new Uint8Array(700) }])
    expect(store.largestValueBytes()).toBe(700)
    await store.put(Uint8Array.of(3), new Uint8Array(10))
    expect(store.largestValueBytes()).toBe(700)
  })
})
