import { StoreError } from '../../src/errors.js'
import type { BatchOp, KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { walkTrie } from '../../src/trie/walk.js'
import type { Prng } from '../../src/util/prng.js'

/** `count` random items, mostly small, sometimes past the 32-byte embedding limit or a few KiB. */
export function randomItems(prng: Prng, count: number): Uint8Array[] {
  const items: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    const kind = prng.int(10)
    const size = kind < 5 ? 1 + prng.int(31) : kind < 9 ? 32 + prng.int(200) : 1000 + prng.int(4000)
    items.push(prng.bytes(size))
  }
  return items
}

/** A fresh store holding only the trie nodes of `root` (no topic items or meta), as a trie sync leaves it. */
export async function copyTrie(from: KVStore, root: Uint8Array): Promise<MemoryStore> {
  const to = new MemoryStore()
  const ops: BatchOp[] = []
  for await (const node of walkTrie(from, root)) ops.push({ type: 'put', key: node.hash, value: node.blob })
  await to.batch(ops)
  return to
}

/** A `MemoryStore` whose batches can be made to fail, to stand in for a crash between two batches. */
export class FlakyStore extends MemoryStore {
  /** Batches still allowed before every later one fails. */
  batchesLeft = Number.POSITIVE_INFINITY
  batches = 0

  override async batch(ops: BatchOp[]): Promise<void> {
    if (this.batchesLeft <= 0) throw new StoreError('injected batch failure')
    this.batchesLeft--
    this.batches++
    await super.batch(ops)
  }
}

/** A `MemoryStore` that counts the keys asked of it. */
export class CountingStore extends MemoryStore {
  keysRead = 0
  override async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.keysRead++
    return super.get(key)
  }
  override async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.keysRead += keys.length
    return super.getMany(keys)
  }
}

/**
 * A `MemoryStore` that can hold back the values of one `getMany` of keys with a given prefix byte (0x68 per-item
 * hashes, 0x69 items), read at the call, until released.
 */
export class GatedStore extends MemoryStore {
  private gate: { prefix: number; held: Promise<void>; reached: () => void } | undefined
  /** Holds the next such read: resolves once that read has taken its values, to a release. */
  holdNextRead(prefix: number): Promise<() => void> {
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    return new Promise((reached) => {
      this.gate = { prefix, held, reached: () => reached(release) }
    })
  }
  override async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const values = await super.getMany(keys)
    const gate = this.gate
    if (gate !== undefined && keys[0]?.[0] === gate.prefix) {
      this.gate = undefined
      gate.reached()
      await gate.held
    }
    return values
  }
}
