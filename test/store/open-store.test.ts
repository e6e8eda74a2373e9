import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { openStore } from '../../src/store/open-store.js'

describe('openStore', () => {
  let root: string

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsfg-open-store-'))
  })

  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it("gives a MemoryStore for ':memory:'", async () => {
    const store = await openStore(':memory:')
    expect(store).toBeInstanceOf(MemoryStore)
    await store.close()
  })

  it('gives a LevelStore for a directory, creating it', async () => {
    const dir = join(root, 'data')
    const store = await openStore(dir)
    expect(store).toBeInstanceOf(LevelStore)
    await store.put(Uint8Array.of(1), Uint8Array.of(2))
    await store.close()
    const again = await openStore(dir)
    expect(Array.from((await again.get(Uint8Array.of(1)))!)).toEqual([2])
    await again.close()
  })
})
