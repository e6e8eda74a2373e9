/**
 * TrieSync scheduler throughput with an in-process "peer" answering from the source store, beside the local
 * limit: hashing and decoding the same nodes, which any verified sync must do at least once.
 *
 *   npm run bench:scheduler            (100k and 1M account-like keys)
 *   npm run bench:scheduler -- 100000  (one size)
 */
import { accountEntries } from '../src/fixtures/generate.js'
import { MemoryStore } from '../src/store/memory-store.js'
import { TrieSync } from '../src/sync/trie-sync.js'
import { importSorted } from '../src/trie/stack-trie.js'
import { decodeNode } from '../src/trie/node.js'
import { keccak256 } from '../src/trie/keccak.js'
import { IDEAL_BATCH_BYTES, MAX_NODES_PER_REQUEST } from '../src/constants.js'

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0)

let peakRss = 0
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 20)

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1)
}

async function run(keys: number): Promise<void> {
  const source = new MemoryStore()
  const t0 = performance.now()
  const { root, nodes } = await importSorted(source, accountEntries(1, keys))
  const buildMs = performance.now() - t0

  // Local limit: hash + decode every node once.
  const blobs: Uint8Array[] = []
  for (const key of source.keys()) blobs.push((await source.get(Uint8Array.from(Buffer.from(key.slice(2), 'hex'))))!)
  let bytes = 0
  const t1 = performance.now()
  for (const blob of blobs) {
    keccak256(blob)
    decodeNode(blob)
    bytes += blob.length
  }
  const limitMs = performance.now() - t1
  blobs.length = 0

  if (global.gc) global.gc()
  peakRss = process.memoryUsage().rss
  const rssBefore = peakRss
  const target = new MemoryStore()
  const sync = new TrieSync(root, target)
  const t2 = performance.now()
  let fetched = 0
  while (sync.pending > 0) {
    const hashes = sync.missing(MAX_NODES_PER_REQUEST)
    if (hashes.length === 0) throw new Error('scheduler stalled')
    const got = await source.getMany(hashes)
    await sync.processMany(got as Uint8Array[])
    fetched += hashes.length
    // The loop never yields to timers (the store answers at once), so sample memory here.
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
    if (sync.memSize >= IDEAL_BATCH_BYTES) await sync.commit()
  }
  await sync.commit()
  const syncMs = performance.now() - t2
  if (target.size !== nodes) throw new Error(`synced ${target.size} nodes, source has ${nodes}`)

  const row = {
    keys,
    nodes,
    MB: Number(mb(bytes)),
    buildS: Number((buildMs / 1000).toFixed(2)),
    limitNodesPerS: Math.round(nodes / (limitMs / 1000)),
    syncNodesPerS: Math.round(fetched / (syncMs / 1000)),
    syncS: Number((syncMs / 1000).toFixed(2)),
    ratio: Number((limitMs / syncMs).toFixed(2)),
    peakRssMB: Number(mb(peakRss)),
    rssGrowthMB: Number(mb(peakRss - rssBefore))
  }
  console.log(JSON.stringify(row))
}

for (const n of sizes.length > 0 ? sizes : [100_000, 1_000_000]) await run(n)
clearInterval(sampler)
