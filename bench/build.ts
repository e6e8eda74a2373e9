/**
 * Trie build rate: StackTrie alone (hash only), importSorted into a MemoryStore, and @ethereumjs/mpt `put`
 * for comparison, on account-like entries (32-byte keys, ~75-byte values). Run from the repository root:
 *
 *   npx node --import ./bench/register.mjs bench/build.ts [--skip-mpt]
 *
 * `npx` puts the project's Node 22 first on PATH (the system Node 20 cannot strip types); register.mjs maps
 * the sources' `./x.js` imports to their `.ts` files. mpt runs on 100k keys only: at a few thousand puts a
 * second, a million would take minutes. Numbers from a run are in the report of the change that added this.
 */
import { createMPT } from '@ethereumjs/mpt'
import { accountEntries } from '../src/fixtures/generate.js'
import { MemoryStore } from '../src/store/memory-store.js'
import { importSorted, StackTrie } from '../src/trie/stack-trie.js'
import { toHex } from '../src/util/hex.js'

const SEED = 1
const skipMpt = process.argv.includes('--skip-mpt')

/** Runs `run` once, printing wall time, keys/s and CPU time (all threads: the GC works in parallel). */
async function timed<T>(what: string, keys: number, run: () => T | Promise<T>): Promise<T> {
  const cpu = process.cpuUsage()
  const start = performance.now()
  const result = await run()
  const seconds = (performance.now() - start) / 1000
  const { user, system } = process.cpuUsage(cpu)
  const rate = Math.round(keys / seconds).toLocaleString('en-US')
  const cpuSeconds = ((user + system) / 1e6).toFixed(2)
  console.log(`  ${what.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s  ${rate.padStart(10)} keys/s  (cpu ${cpuSeconds} s)`)
  return result
}

for (const count of [100_000, 1_000_000]) {
  console.log(`${count.toLocaleString('en-US')} account entries`)
  const entries = await timed('generate (not part of a build)', count, () => accountEntries(SEED, count))

  const root = await timed('StackTrie, hash only', count, () => {
    const trie = new StackTrie()
    for (const [key, value] of entries) trie.insert(key, value)
    return trie.root()
  })

  const store = new MemoryStore()
  const imported = await timed('importSorted into MemoryStore', count, () => importSorted(store, entries))
  console.log(`  root ${toHex(imported.root)}, ${imported.nodes.toLocaleString('en-US')} nodes`)
  if (toHex(imported.root) !== toHex(root)) throw new Error('importSorted and StackTrie disagree')

  if (count <= 100_000 && !skipMpt) {
    const mptRoot = await timed('@ethereumjs/mpt put (pruning)', count, async () => {
      const trie = await createMPT({ useNodePruning: true })
      for (const [key, value] of entries) await trie.put(key, value)
      return trie.root()
    })
    if (toHex(mptRoot) !== toHex(root)) throw new Error('@ethereumjs/mpt and StackTrie disagree')
  }
}
