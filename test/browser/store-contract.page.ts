/**
 * Runs in Chromium (bundled by `test/browser/bundle.ts`, `vitest` aliased to `vitest-shim.ts`): the `KVStore`
 * contract `MemoryStore` and `LevelStore` pass, against `BrowserLevelStore` on the page's IndexedDB, and a
 * reopen that finds what was written.
 */
import { BrowserLevelStore } from '../../src/store/browser-level-store.js'
import { STORE_FORMAT, STORE_FORMAT_KEY } from '../../src/store/abstract-level-store.js'
import { kvStoreSuite } from '../store/kv-store-suite.js'
import { describe, expect, it, runRegistered } from './vitest-shim.js'

let counter = 0
let current: string | undefined

kvStoreSuite('BrowserLevelStore', {
  create: async () => {
    current = `dsfg-contract-${++counter}`
    return BrowserLevelStore.open(current, { markIfEmpty: false })
  },
  cleanup: async () => {
    if (current !== undefined) await BrowserLevelStore.destroy(current)
    current = undefined
  }
})

describe('BrowserLevelStore', () => {
  it('keeps its data across close and reopen, with the format marker', async () => {
    const name = 'dsfg-reopen'
    const store = await BrowserLevelStore.open(name)
    await store.batch([
      { type: 'put', key: Uint8Array.of(1), value: Uint8Array.of(10, 0) },
      { type: 'put', key: Uint8Array.of(2), value: new Uint8Array(0) }
    ])
    await store.close()
    const reopened = await BrowserLevelStore.open(name)
    try {
      const [one, two, three] = await reopened.getMany([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)])
      expect(Array.from(one!)).toEqual([10, 0])
      expect(Array.from(two!)).toEqual([])
      expect(three).toBeUndefined()
      expect(Array.from((await reopened.get(STORE_FORMAT_KEY))!)).toEqual([STORE_FORMAT])
    } finally {
      await reopened.close()
      await BrowserLevelStore.destroy(name)
    }
  })

  it('stores a view into a larger buffer as its own bytes, not with the whole buffer', async () => {
    const name = 'dsfg-views'
    const store = await BrowserLevelStore.open(name)
    try {
      // A trie node inside its reply: IndexedDB's structured clone would take the whole megabyte.
      const reply = new Uint8Array(1 << 20).fill(7)
      await store.put(Uint8Array.of(1), reply.subarray(100, 110))
      await store.batch([{ type: 'put', key: Uint8Array.of(2), value: reply.subarray(200, 232) }])
      const [one, two] = await store.getMany([Uint8Array.of(1), Uint8Array.of(2)])
      expect(Array.from(one!)).toEqual(new Array(10).fill(7))
      expect(one!.buffer.byteLength).toBe(10)
      expect(two!.buffer.byteLength).toBe(32)
    } finally {
      await store.close()
      await BrowserLevelStore.destroy(name)
    }
  })
})

;(globalThis as { runTests?: typeof runRegistered }).runTests = runRegistered
