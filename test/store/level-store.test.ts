import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import { LevelStore } from '../../src/store/level-store.js'
import { kvStoreSuite } from './kv-store-suite.js'

let root: string
let counter = 0

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'dsfg-level-store-'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

function freshDir(): string {
  counter++
  return join(root, `db-${counter}`)
}

let current: string | undefined
kvStoreSuite('LevelStore', {
  create: async () => {
    current = freshDir()
    return LevelStore.open(current)
  },
  cleanup: async () => {
    if (current !== undefined) await rm(current, { recursive: true, force: true })
    current = undefined
  }
})

describe('LevelStore', () => {
  it('takes its memtable and table sizes from the init, and rejects sizes out of range', async () => {
    const dir = freshDir()
    await expect(LevelStore.open(dir, { writeBufferBytes: 1024 })).rejects.toBeInstanceOf(StoreError)
    await expect(LevelStore.open(dir, { maxFileBytes: 2 ** 31 })).rejects.toBeInstanceOf(StoreError)
    const store = await LevelStore.open(dir, { writeBufferBytes: 8 * 1024 * 1024, maxFileBytes: 4 * 1024 * 1024 })
    await store.batch([{ type: 'put', key: Uint8Array.of(1), value: new Uint8Array(100).fill(7) }])
    expect(await store.get(Uint8Array.of(1))).toEqual(new Uint8Array(100).fill(7))
    await store.close()
  })

  it('keeps its data across close and reopen', async () => {
    const dir = freshDir()
    const store = await LevelStore.open(dir)
    await store.batch([
      { type: 'put', key: Uint8Array.of(1), value: Uint8Array.of(10, 0) },
      { type: 'put', key: Uint8Array.of(2), value: new Uint8Array(0) }
    ])
    await store.put(Uint8Array.of(3), Uint8Array.of(30))
    await store.del(Uint8Array.of(3))
    await store.close()

    const reopened = await LevelStore.open(dir, { createIfMissing: false })
    try {
      const [one, two, three] = await reopened.getMany([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)])
      expect(Array.from(one!)).toEqual([10, 0])
      expect(Array.from(two!)).toEqual([])
      expect(three).toBeUndefined()
    } finally {
      await reopened.close()
    }
  })

  it('creates missing parent directories', async () => {
    const dir = join(freshDir(), 'a', 'b')
    const store = await LevelStore.open(dir)
    await store.put(Uint8Array.of(1), Uint8Array.of(1))
    await store.close()
  })

  it('refuses a second open of the same directory with a StoreError naming the path', async () => {
    const dir = freshDir()
    const first = await LevelStore.open(dir)
    try {
      const err = await LevelStore.open(dir).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(err).toBeInstanceOf(StoreError)
      if (!(err instanceof StoreError)) return
      expect(err.message).toContain(dir)
      expect(err.message).toMatch(/lock/)
      expect(err.cause).toBeDefined()
      // The first handle keeps working.
      await first.put(Uint8Array.of(1), Uint8Array.of(2))
      expect(Array.from((await first.get(Uint8Array.of(1)))!)).toEqual([2])
    } finally {
      await first.close()
    }
  })

  it('rejects a path that is a file with a StoreError', async () => {
    const file = join(root, `file-${++counter}`)
    await writeFile(file, 'not a directory')
    const err = await LevelStore.open(file).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).message).toBe(`cannot open store at ${file}: not a directory`)
  })

  it('rejects a missing directory when createIfMissing is false', async () => {
    await expect(LevelStore.open(freshDir(), { createIfMissing: false })).rejects.toBeInstanceOf(StoreError)
  })

  it('rejects an empty path', async () => {
    await expect(LevelStore.open('')).rejects.toBeInstanceOf(StoreError)
  })
})
