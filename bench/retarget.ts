/**
 * Re-target cost: a client that holds root A of an account-like trie syncs root B, which differs from A in
 * the values of 1% of the keys (seeded). B's sync should fetch little more than the nodes B does not share
 * with A, since A's complete subtries are already stored. One `dsfg serve` process holds both tries; the
 * client is a node in this process (`createDsfgNode`, `startStateSync`). Two runs, each into a fresh store:
 *
 * - sequential: sync A to the end, then start a sync of B on the same node and store;
 * - mid-sync: start A and `retarget(B)` once half of A's nodes have arrived (informational: what a root
 *   change in flight costs, the nodes of A fetched before it included).
 *
 *   npm run build && npm run bench:retarget            (100k keys)
 *   npm run bench:retarget -- 20000
 */
import { join } from 'node:path'
import { RLP } from '@ethereumjs/rlp'
import { multiaddr } from '@multiformats/multiaddr'
import { accountEntries, type Entry } from '../src/fixtures/generate.js'
import { createDsfgNode } from '../src/node/create-node.js'
import { LevelStore } from '../src/store/level-store.js'
import { importSorted } from '../src/trie/stack-trie.js'
import { checkTrieComplete, walkTrie } from '../src/trie/walk.js'
import { toHex } from '../src/util/hex.js'
import { Prng } from '../src/util/prng.js'
import { round, startServers, withTempDir } from './processes.js'

/** Share of A's keys whose values B changes. */
export const DEFAULT_CHANGED_SHARE = 0.01
/** Share of A's nodes received before the mid-sync run re-targets to B. */
const MID_SYNC_AT = 0.5

export interface RetargetResult {
  keys: number
  changedKeys: number
  nodesA: number
  nodesB: number
  /** Nodes of B that A does not have: the least any sync of B from A's store must fetch. */
  newNodesB: number
  sequential: {
    fetchedA: number
    /** Nodes fetched by the sync of B that followed the complete sync of A. */
    fetchedB: number
    /** fetchedB over nodesB: the re-target figure. */
    fetchedBShare: number
    /** newNodesB over nodesB: the floor of fetchedBShare. */
    minimumShare: number
    syncBS: number
  }
  midSync: {
    retargetAfterNodes: number
    /** All nodes fetched, of A before the re-target and of B after. */
    fetchedTotal: number
    fetchedOverNodesB: number
    seconds: number
  }
}

/** `entries` with the value of `share` of the keys (seeded choice) changed: the account's nonce goes up by one. */
export function changeValues(entries: Entry[], share: number, seed: number): { entries: Entry[]; changed: number } {
  const changed = Math.max(1, Math.round(entries.length * share))
  const prng = new Prng(seed)
  const picked = new Set<number>()
  while (picked.size < changed) picked.add(prng.int(entries.length))
  const out = entries.slice()
  for (const i of picked) {
    const [key, value] = out[i]!
    const [nonce, ...rest] = RLP.decode(value) as Uint8Array[]
    out[i] = [key, RLP.encode([quantity(bytesToNumber(nonce!) + 1), ...rest])]
  }
  return { entries: out, changed }
}

function bytesToNumber(bytes: Uint8Array): number {
  let n = 0
  for (const b of bytes) n = n * 256 + b
  return n
}

/** Minimal big-endian bytes of `n`, as RLP quantities are written. */
function quantity(n: number): Uint8Array {
  const bytes: number[] = []
  for (; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return Uint8Array.from(bytes)
}

/** Hashes (hex) of every node of the trie at `root`. */
async function nodeHashes(store: LevelStore, root: Uint8Array): Promise<Set<string>> {
  const hashes = new Set<string>()
  for await (const { hash } of walkTrie(store, root)) hashes.add(toHex(hash))
  return hashes
}

/**
 * A client node on a fresh LevelDB at `path`, connected to `addr`, for `fn`; checks afterwards that the trie
 * at `root` is complete in the store.
 */
async function withClient<T>(
  path: string,
  addr: string,
  root: Uint8Array,
  fn: (node: Awaited<ReturnType<typeof createDsfgNode>>) => Promise<T>
): Promise<T> {
  const store = await LevelStore.open(path)
  try {
    const node = await createDsfgNode({ store })
    let result: T
    try {
      await node.dial(multiaddr(addr))
      result = await fn(node)
    } finally {
      await node.stop()
    }
    const check = await checkTrieComplete(store, root)
    if (!check.complete) throw new Error(`trie ${toHex(root)} incomplete after the sync: ${check.missing.length} nodes missing`)
    return result
  } finally {
    await store.close()
  }
}

/** Measures syncing B after A, where B changes `changedShare` of `accountEntries(seed, keys)`'s values. */
export async function measureRetarget(keys: number, changedShare = DEFAULT_CHANGED_SHARE, seed = 1): Promise<RetargetResult> {
  const entriesA = accountEntries(seed, keys)
  const { entries: entriesB, changed } = changeValues(entriesA, changedShare, seed + 1)
  return withTempDir('dsfg-bench-retarget-', async (dir) => {
    const source = join(dir, 'source')
    const store = await LevelStore.open(source)
    let rootA: Uint8Array
    let rootB: Uint8Array
    let nodesA: number
    let hashesB: Set<string>
    let newNodesB = 0
    try {
      rootA = (await importSorted(store, entriesA)).root
      rootB = (await importSorted(store, entriesB)).root
      const hashesA = await nodeHashes(store, rootA)
      nodesA = hashesA.size
      hashesB = await nodeHashes(store, rootB)
      for (const h of hashesB) if (!hashesA.has(h)) newNodesB++
    } finally {
      await store.close()
    }
    const nodesB = hashesB.size
    const servers = await startServers(source, dir, 'server', 1)
    try {
      const addr = servers.addrs[0]!
      const sequential = await withClient(join(dir, 'client-sequential'), addr, rootB, async (node) => {
        const a = await node.services.dsfg.startStateSync(rootA).done
        const started = performance.now()
        const b = await node.services.dsfg.startStateSync(rootB).done
        const syncBS = (performance.now() - started) / 1000
        return {
          fetchedA: a.nodes,
          fetchedB: b.nodes,
          fetchedBShare: round(b.nodes / nodesB, 4),
          minimumShare: round(newNodesB / nodesB, 4),
          syncBS: round(syncBS, 3)
        }
      })
      const retargetAfterNodes = Math.round(nodesA * MID_SYNC_AT)
      const midSync = await withClient(join(dir, 'client-mid-sync'), addr, rootB, async (node) => {
        const started = performance.now()
        const handle = node.services.dsfg.startStateSync(rootA)
        const onProgress = (e: CustomEvent<{ nodes: number }>): void => {
          if (e.detail.nodes < retargetAfterNodes) return
          handle.events.removeEventListener('progress', onProgress)
          handle.retarget(rootB)
        }
        handle.events.addEventListener('progress', onProgress)
        const result = await handle.done
        if (result.retargets !== 1) throw new Error(`expected one re-target, the sync made ${result.retargets}`)
        return {
          retargetAfterNodes,
          fetchedTotal: result.nodes,
          fetchedOverNodesB: round(result.nodes / nodesB, 3),
          seconds: round((performance.now() - started) / 1000, 3)
        }
      })
      return { keys, changedKeys: changed, nodesA, nodesB, newNodesB, sequential, midSync }
    } finally {
      await servers.stop()
    }
  })
}

if (import.meta.main) {
  const [keys = 100_000] = process.argv.slice(2).map(Number)
  console.log(JSON.stringify(await measureRetarget(keys)))
}
