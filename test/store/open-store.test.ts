import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LevelStore, STORE_FORMAT, STORE_FORMAT_KEY } from '../../src/store/level-store.js'
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

  it('refuses to read a directory that holds no database, and leaves nothing in it', async () => {
    const absent = join(root, 'absent')
    await expect(openStore(absent, { mode: 'read' })).rejects.toThrow(`no DSFG store at ${absent}`)
    expect(existsSync(absent)).toBe(false)
    const empty = join(root, 'empty')
    await mkdir(empty)
    await expect(openStore(empty, { mode: 'read' })).rejects.toThrow(`no DSFG store at ${empty} (the directory holds no database)`)
    // LevelDB would have left its LOCK and LOG files there.
    expect(await readdir(empty)).toEqual([])
  })

  it("refuses another program's LevelDB (data and no format marker), and closes it", async () => {
    const dir = join(root, 'foreign')
    const raw = await LevelStore.open(dir, { markIfEmpty: false })
    await raw.put(Uint8Array.of(7), Uint8Array.of(7))
    await raw.close()
    for (const mode of ['read', 'write'] as const) {
      await expect(openStore(dir, { mode })).rejects.toThrow(`${dir} is not a DSFG store (it has no DSFG format marker)`)
    }
    // Closed on refusal: the directory's lock is free, and nothing was written into it.
    const again = await LevelStore.open(dir, { markIfEmpty: false })
    expect(await again.get(STORE_FORMAT_KEY)).toBeUndefined()
    expect(Array.from((await again.get(Uint8Array.of(7)))!)).toEqual([7])
    await again.close()
  })

  it('opens stores of format 1 (earlier versions) and 2, and refuses any other', async () => {
    // Format 2 keeps a bound on its values' lengths, which an earlier version's writes would leave too small:
    // such a version refuses it (it reads format 1 only).
    for (const format of [1, 2, 3]) {
      const dir = join(root, `format-${format}`)
      const raw = await LevelStore.open(dir)
      await raw.put(STORE_FORMAT_KEY, Uint8Array.of(format))
      await raw.close()
      if (format === 3) {
        await expect(openStore(dir)).rejects.toThrow('a DSFG store of another format than 1 or 2')
        // A marker of more than one byte is no format this version knows either, whatever its first byte. (The
        // refused store was closed: its lock is free to open it again.)
        const longer = await LevelStore.open(dir)
        await longer.put(STORE_FORMAT_KEY, Uint8Array.of(2, 0))
        await longer.close()
        await expect(openStore(dir)).rejects.toThrow('a DSFG store of another format than 1 or 2')
        continue
      }
      const store = await openStore(dir)
      expect(store).toBeInstanceOf(LevelStore)
      await store.close()
    }
    // A new store is written as format 2.
    const fresh = await openStore(join(root, 'fresh'))
    expect(Array.from((await fresh.get(STORE_FORMAT_KEY))!)).toEqual([STORE_FORMAT])
    expect(STORE_FORMAT).toBe(2)
    await fresh.close()
    // So is one LevelStore.open makes (as a node does), which openStore then reads.
    const opened = await LevelStore.open(join(root, 'opened'))
    await opened.close()
    await (await openStore(join(root, 'opened'), { mode: 'read' })).close()
  })
})
