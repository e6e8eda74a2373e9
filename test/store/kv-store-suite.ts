import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import type { KVStore } from '../../src/store/kv-store.js'

/** Creates a fresh, empty, open store; `cleanup` runs after each test (the store may already be closed). */
export interface StoreFactory {
  create(): Promise<KVStore>
  cleanup?(): Promise<void>
}

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b)

/** Compares contents, not classes: a store may hand back any `Uint8Array`. */
function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array)
  expect(Array.from(actual!)).toEqual(Array.from(expected))
}

/** The behaviour every `KVStore` implementation must share. */
export function kvStoreSuite(name: string, factory: StoreFactory): void {
  describe(`${name} (KVStore contract)`, () => {
    let store: KVStore

    beforeEach(async () => {
      store = await factory.create()
    })

    afterEach(async () => {
      await store.close()
      await factory.cleanup?.()
    })

    it('holds nothing when fresh, and something once a key was put, until it is deleted', async () => {
      expect(await store.holdsNothing?.()).toBe(true)
      await store.put(bytes(7), bytes(1))
      expect(await store.holdsNothing?.()).toBe(false)
      await store.del(bytes(7))
      expect(await store.holdsNothing?.()).toBe(true)
      await store.batch([{ type: 'put', key: new Uint8Array(32).fill(9), value: bytes(2) }])
      expect(await store.holdsNothing?.()).toBe(false)
    })

    it('gets undefined for an absent key', async () => {
      expect(await store.get(bytes(1, 2, 3))).toBeUndefined()
    })

    it('puts, gets, overwrites and deletes', async () => {
      await store.put(bytes(1), bytes(10))
      expectBytes(await store.get(bytes(1)), bytes(10))
      await store.put(bytes(1), bytes(11, 12))
      expectBytes(await store.get(bytes(1)), bytes(11, 12))
      await store.del(bytes(1))
      expect(await store.get(bytes(1))).toBeUndefined()
    })

    it('deleting an absent key is not an error', async () => {
      await expect(store.del(bytes(9))).resolves.toBeUndefined()
    })

    it('getMany answers in the order asked, undefined where absent', async () => {
      await store.put(bytes(1), bytes(10))
      await store.put(bytes(3), bytes(30))
      const values = await store.getMany([bytes(3), bytes(2), bytes(1), bytes(3), bytes(4)])
      expect(values).toHaveLength(5)
      expectBytes(values[0], bytes(30))
      expect(values[1]).toBeUndefined()
      expectBytes(values[2], bytes(10))
      expectBytes(values[3], bytes(30))
      expect(values[4]).toBeUndefined()
      expect(await store.getMany([])).toEqual([])
    })

    it('applies a batch of puts and deletes', async () => {
      await store.put(bytes(1), bytes(10))
      await store.put(bytes(2), bytes(20))
      await store.batch([
        { type: 'put', key: bytes(3), value: bytes(30) },
        { type: 'del', key: bytes(1) },
        { type: 'put', key: bytes(2), value: bytes(21) },
        { type: 'put', key: bytes(4), value: bytes(40) },
        { type: 'del', key: bytes(4) }
      ])
      const [one, two, three, four] = await store.getMany([bytes(1), bytes(2), bytes(3), bytes(4)])
      expect(one).toBeUndefined()
      expectBytes(two, bytes(21))
      expectBytes(three, bytes(30))
      expect(four).toBeUndefined()
      await expect(store.batch([])).resolves.toBeUndefined()
    })

    it('keeps binary keys apart: empty value, 0x00 bytes, prefixes', async () => {
      const keys = [bytes(0), bytes(0, 0), bytes(0, 0, 0), bytes(0xff), bytes(0xff, 0), bytes(1, 0, 1)]
      for (const [i, key] of keys.entries()) await store.put(key, bytes(i, 0, i))
      await store.put(bytes(7), new Uint8Array(0))
      const values = await store.getMany(keys)
      for (const [i, value] of values.entries()) expectBytes(value, bytes(i, 0, i))
      const empty = await store.get(bytes(7))
      expectBytes(empty, new Uint8Array(0))
      expect(empty).not.toBeUndefined()
    })

    it('stores a copy: mutating the caller buffer after put does not change the stored value', async () => {
      const key = bytes(5)
      const value = bytes(1, 2, 3)
      await store.put(key, value)
      value.fill(9)
      expectBytes(await store.get(key), bytes(1, 2, 3))

      // Mutation before the put settles, and through batch.
      const early = bytes(4, 5, 6)
      const pending = store.put(bytes(6), early)
      early.fill(0)
      await pending
      expectBytes(await store.get(bytes(6)), bytes(4, 5, 6))

      const batched = bytes(7, 8)
      const batchKey = bytes(8)
      const pendingBatch = store.batch([{ type: 'put', key: batchKey, value: batched }])
      batched.fill(0)
      batchKey.fill(0)
      await pendingBatch
      expectBytes(await store.get(bytes(8)), bytes(7, 8))
    })

    it('returned values are independent of later writes', async () => {
      await store.put(bytes(1), bytes(1, 1))
      const first = await store.get(bytes(1))
      await store.put(bytes(1), bytes(2, 2))
      expectBytes(first, bytes(1, 1))
      // .slice() must be a copy (a Buffer's slice would alias).
      const copy = first!.slice()
      copy[0] = 7
      expectBytes(first, bytes(1, 1))
    })

    it('rejects every call after close with StoreError; close twice is fine', async () => {
      await store.put(bytes(1), bytes(1))
      await Promise.all([store.close(), store.close()])
      await expect(store.close()).resolves.toBeUndefined()
      await expect(store.get(bytes(1))).rejects.toBeInstanceOf(StoreError)
      await expect(store.getMany([bytes(1)])).rejects.toBeInstanceOf(StoreError)
      await expect(store.put(bytes(1), bytes(2))).rejects.toBeInstanceOf(StoreError)
      await expect(store.del(bytes(1))).rejects.toBeInstanceOf(StoreError)
      await expect(store.batch([{ type: 'del', key: bytes(1) }])).rejects.toBeInstanceOf(StoreError)
    })
  })
}
