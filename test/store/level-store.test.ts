import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import { LevelStore, type LevelStoreInit, STORE_FORMAT, STORE_FORMAT_KEY } from '../../src/store/level-store.js'
import { Prng } from '../../src/util/prng.js'
import { kvStoreSuite } from './kv-store-suite.js'

const MiB = 1024 * 1024
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
    // What LevelDB wrote for `mib` MiB of incompressible values under random keys: the sizes of its table files.
    const tablesAfter = async (init: LevelStoreInit, mib: number): Promise<number[]> => {
      const at = freshDir()
      const store = await LevelStore.open(at, init)
      try {
        const prng = new Prng(mib)
        const value = prng.bytes(64 * 1024)
        for (let i = 0; i < mib * 4; i++) {
          await store.batch(Array.from({ length: 4 }, () => ({ type: 'put' as const, key: prng.bytes(16), value })))
        }
        const tables: number[] = []
        for (const file of await readdir(at)) {
          if (!file.endsWith('.ldb')) continue
          // A compaction still running in the background may delete a table between the listing and the stat:
          // it is then no table of the database any more.
          const size = await stat(join(at, file)).then(
            (s) => s.size,
            (err: NodeJS.ErrnoException) => {
              if (err.code === 'ENOENT') return undefined
              throw err
            }
          )
          if (size !== undefined) tables.push(size)
        }
        return tables.sort((a, b) => b - a)
      } finally {
        await store.close()
      }
    }
    // The memtable: 4 MiB fit in a 64 MiB one, so nothing reaches a table file; a 1 MiB one is written out
    // about every MiB (LevelDB waits for the previous flush before it switches memtables again, so the first
    // flushes are done when the writes return).
    expect(await tablesAfter({ writeBufferBytes: 64 * MiB }, 4)).toEqual([])
    const flushed = await tablesAfter({ writeBufferBytes: MiB, maxFileBytes: 64 * MiB }, 4)
    expect(flushed.length).toBeGreaterThanOrEqual(2)
    for (const size of flushed) expect(size).toBeLessThan(1.5 * MiB)
    // The table size: 16 MiB through a 1 MiB memtable make 16 level-0 tables, and LevelDB stops writes at 12
    // until a compaction has merged level 0 into level 1, cutting its output at maxFileBytes.
    const small = await tablesAfter({ writeBufferBytes: MiB, maxFileBytes: MiB }, 16)
    expect(small.length).toBeGreaterThanOrEqual(12)
    expect(small[0]).toBeLessThan(1.5 * MiB)
    const large = await tablesAfter({ writeBufferBytes: MiB, maxFileBytes: 64 * MiB }, 16)
    expect(large[0]).toBeGreaterThan(3 * MiB)
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

  it('keeps a bound on its values\' lengths with them, across reopen; none for a store written without one', async () => {
    // A server reads many nodes at a time from a store whose values are all small (answerNodes).
    const dir = freshDir()
    const store = await LevelStore.open(dir)
    expect(store.largestValueBytes()).toBe(0)
    await store.batch([
      { type: 'put', key: Uint8Array.of(1), value: new Uint8Array(300) },
      { type: 'put', key: Uint8Array.of(2), value: new Uint8Array(500) }
    ])
    await store.put(Uint8Array.of(3), new Uint8Array(200))
    expect(store.largestValueBytes()).toBe(500)
    // Two batches that raise it at once: the bound ends at the larger.
    await Promise.all([store.put(Uint8Array.of(4), new Uint8Array(900)), store.batch([{ type: 'put', key: Uint8Array.of(5), value: new Uint8Array(700) }])])
    expect(store.largestValueBytes()).toBe(900)
    await store.del(Uint8Array.of(4)) // a bound, not the exact largest: it stays
    await store.close()
    const reopened = await LevelStore.open(dir, { createIfMissing: false })
    expect(reopened.largestValueBytes()).toBe(900)
    await reopened.put(Uint8Array.of(7), new Uint8Array(901)) // one byte past it raises it too
    expect(reopened.largestValueBytes()).toBe(901)
    // Its own bookkeeping is not data; a key after it (0xff…) is.
    for (const key of [1, 2, 3, 5, 7]) await reopened.del(Uint8Array.of(key))
    expect(await reopened.holdsNothing()).toBe(true)
    await reopened.put(Uint8Array.of(0xff), Uint8Array.of(1))
    expect(await reopened.holdsNothing()).toBe(false)
    await reopened.del(Uint8Array.of(0xff))
    await reopened.close()
    // A store whose values were written without a bound (an earlier version) has none.
    const old = freshDir()
    const raw = new ClassicLevel<Uint8Array, Uint8Array>(old, { keyEncoding: 'view', valueEncoding: 'view' })
    await raw.put(STORE_FORMAT_KEY, Uint8Array.of(1)) // the format earlier versions wrote
    expect(STORE_FORMAT).toBe(2)
    await raw.put(Uint8Array.of(1), new Uint8Array(10))
    await raw.close()
    const earlier = await LevelStore.open(old)
    expect(earlier.largestValueBytes()).toBeUndefined()
    await earlier.put(Uint8Array.of(2), new Uint8Array(20))
    expect(earlier.largestValueBytes()).toBeUndefined()
    await earlier.close()
    // A writer that keeps no bound (an earlier version) left it too small: a read past it raises it.
    const outdated = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await outdated.put(Uint8Array.of(6), new Uint8Array(5_000))
    await outdated.close()
    const healed = await LevelStore.open(dir)
    expect(healed.largestValueBytes()).toBe(901)
    await healed.getMany([Uint8Array.of(6)])
    expect(healed.largestValueBytes()).toBe(5_000)
    await healed.close()
  })

  it('rejects, never throws, a batch it cannot write: with a StoreError, its database batch closed, the store still usable', async () => {
    const store = await LevelStore.open(freshDir())
    interface ChainedBatch {
      close(): Promise<void>
      write(): Promise<void>
    }
    const db = (store as unknown as { db: { batch(): ChainedBatch } }).db
    const makeBatch = db.batch.bind(db)
    const closed: boolean[] = []
    let failWrite = false
    db.batch = () => {
      const batch = makeBatch()
      const n = closed.push(false) - 1
      const close = batch.close.bind(batch)
      batch.close = () => {
        closed[n] = true
        return close()
      }
      if (failWrite) batch.write = () => Promise.reject(new Error('disk full'))
      return batch
    }
    const bad = { type: 'put' as const, key: undefined as unknown as Uint8Array, value: Uint8Array.of(1) }
    const calls: (() => Promise<void>)[] = [
      // The database refuses the operation as it is added.
      () => store.batch([bad]),
      // The same, with a value past the bound, which is raised in the same batch.
      () => store.batch([{ type: 'put', key: new Uint8Array(32), value: new Uint8Array(100_000) }, bad])
    ]
    for (const call of calls) {
      let result: Promise<void> | undefined
      expect(() => {
        result = call()
      }).not.toThrow()
      await expect(result).rejects.toBeInstanceOf(StoreError)
      expect(closed.at(-1)).toBe(true)
    }
    failWrite = true
    await expect(store.batch([{ type: 'put', key: new Uint8Array(32).fill(1), value: Uint8Array.of(3) }])).rejects.toBeInstanceOf(StoreError)
    expect(closed.at(-1)).toBe(true)
    failWrite = false
    await store.batch([{ type: 'put', key: new Uint8Array(32).fill(2), value: Uint8Array.of(3) }])
    expect(await store.get(new Uint8Array(32).fill(2))).toEqual(Uint8Array.of(3))
    expect(await store.get(new Uint8Array(32).fill(1))).toBeUndefined()
    await store.close()
    let afterClose: Promise<void> | undefined
    expect(() => {
      afterClose = store.batch([{ type: 'put', key: new Uint8Array(32), value: Uint8Array.of(1) }])
    }).not.toThrow()
    await expect(afterClose).rejects.toBeInstanceOf(StoreError)
  })

  it('turns every database failure into a StoreError naming the operation, with the database error as its cause', async () => {
    const store = await LevelStore.open(freshDir())
    // A value past the store's bound on values goes through a batch: this one raises it, so the put below is a put.
    await store.put(new Uint8Array(32).fill(9), new Uint8Array(8))
    const cause = new Error('disk on fire')
    const fail = () => Promise.reject(cause)
    const db = (store as unknown as { db: Record<string, unknown> }).db
    const keysOf = db.keys as (...args: unknown[]) => unknown
    const calls: [string, string, () => Promise<unknown>][] = [
      ['get', 'get', () => store.get(new Uint8Array(32))],
      ['getMany', 'getMany', () => store.getMany([new Uint8Array(32)])],
      ['keys', 'keys', () => store.isEmpty()],
      ['keys', 'keys', () => store.holdsNothing()],
      ['put', 'put', () => store.put(new Uint8Array(32), Uint8Array.of(1))],
      ['del', 'del', () => store.del(new Uint8Array(32))]
    ]
    for (const [method, op, call] of calls) {
      const original = db[method]
      db[method] = method === 'keys' ? () => ({ all: fail }) : fail
      const error = await call().then(
        () => undefined,
        (err: unknown) => err
      )
      db[method] = original
      expect(error, op).toBeInstanceOf(StoreError)
      expect((error as StoreError).message, op).toContain(`${op} failed`)
      expect((error as StoreError).cause, op).toBe(cause)
    }
    // The store still works, and the keys listing was put back.
    expect(db.keys).toBe(keysOf)
    await store.put(new Uint8Array(32), Uint8Array.of(7))
    expect(await store.get(new Uint8Array(32))).toEqual(Uint8Array.of(7))
    const close = db.close as () => Promise<void>
    db.close = async () => {
      await close.call(db)
      throw cause
    }
    const closing = await store.close().then(
      () => undefined,
      (err: unknown) => err
    )
    expect(closing).toBeInstanceOf(StoreError)
    expect((closing as StoreError).message).toContain('close failed')
    expect((closing as StoreError).cause).toBe(cause)
  })

  it('releases the directory when the format marker or the bound on values cannot be read or written on open', async () => {
    const proto = ClassicLevel.prototype as unknown as Record<string, unknown>
    for (const method of ['put', 'get']) {
      const dir = freshDir()
      const own = Object.getOwnPropertyDescriptor(proto, method)
      let db: { status: string } | undefined
      proto[method] = function (this: { status: string }) {
        db = this
        return Promise.reject(new Error('disk on fire'))
      }
      try {
        await expect(LevelStore.open(dir)).rejects.toBeInstanceOf(StoreError)
      } finally {
        if (own === undefined) delete proto[method]
        else Object.defineProperty(proto, method, own)
      }
      // Closed before the open was refused, not closing in the background.
      expect(db?.status).toBe('closed')
      // So the lock is free, and a second open marks the store.
      const again = await LevelStore.open(dir)
      expect(await again.get(STORE_FORMAT_KEY)).toEqual(Uint8Array.of(STORE_FORMAT))
      await again.close()
    }
  })

  it('creates missing parent directories', async () => {
    const parent = freshDir()
    const dir = join(parent, 'a', 'b')
    const store = await LevelStore.open(dir)
    await store.put(Uint8Array.of(1), Uint8Array.of(9))
    await store.close()
    expect((await stat(dir)).isDirectory()).toBe(true)
    expect(await readdir(dir)).toContain('CURRENT')
    const reopened = await LevelStore.open(dir, { createIfMissing: false })
    try {
      expect(await reopened.get(Uint8Array.of(1))).toEqual(Uint8Array.of(9))
    } finally {
      await reopened.close()
    }
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
