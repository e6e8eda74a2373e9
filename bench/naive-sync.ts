/**
 * The naive alternative to trie sync: download every key and value over one libp2p stream on loopback (from
 * a child process, see stream-peer.ts) and rebuild the trie with `@ethereumjs/mpt` puts, then compare the
 * root with ours. The rebuild is what costs: mpt manages a few thousand puts a second, so above `putLimit`
 * keys only the first `putLimit` are put and the put time is scaled linearly to all keys (`extrapolatedFrom`).
 * Linear scaling flatters the naive sync (a deeper trie makes each put slower), as does mpt's in-memory
 * database (no disk writes), so the speedups measured against it are lower bounds.
 *
 *   npm run bench:naive                  (100k keys, all put)
 *   npm run bench:naive -- 1000000       (1M keys transferred, the first 100k put)
 */
import { createMPT } from '@ethereumjs/mpt'
import { accountEntries } from '../src/fixtures/generate.js'
import { StackTrie } from '../src/trie/stack-trie.js'
import { equalBytes } from '../src/util/bytes.js'
import { toHex } from '../src/util/hex.js'
import { round } from './processes.js'
import { decodePairs, pullFromChild } from './stream-peer.js'

/** Keys put into mpt before the rest is extrapolated: 100k take ~22 s on an idle 2-vCPU machine. */
export const DEFAULT_PUT_LIMIT = 100_000

export interface NaiveSyncResult {
  keys: number
  transferMB: number
  transferS: number
  transferMBPerS: number
  /** Splitting the received bytes into pairs. */
  decodeS: number
  /** Keys actually put into mpt. */
  putKeys: number
  putS: number
  putsPerS: number
  /** Present when the puts of all keys are scaled up from `putKeys`. */
  extrapolatedFrom?: number
  /** The rebuild of all keys: `putS`, scaled up when extrapolated. */
  rebuildS: number
  /**
   * Transfer, decoding and rebuild, one after the other. A syncer putting while it receives would save at
   * most the transfer, a small share of the total.
   */
  totalS: number
  /** What mpt's root was checked against: the synced root, or our StackTrie's root of the same prefix. */
  rootCheckedAgainst: 'synced root' | 'StackTrie root of the put prefix'
  rootsMatch: boolean
}

/**
 * Measures the naive sync of `accountEntries(seed, keys)`. `expectedRoot` is our root of all keys; when only
 * a prefix is put, mpt's root is checked against our StackTrie's root of that prefix instead.
 */
export async function measureNaiveSync(
  seed: number,
  keys: number,
  expectedRoot: Uint8Array,
  putLimit = DEFAULT_PUT_LIMIT
): Promise<NaiveSyncResult> {
  const pulled = await pullFromChild({ kind: 'pairs', seed, keys }, { keep: true })
  const decodeStarted = performance.now()
  const pairs = decodePairs(pulled.data!)
  const decodeS = (performance.now() - decodeStarted) / 1000
  if (pairs.length !== keys) throw new Error(`received ${pairs.length} pairs, expected ${keys}`)

  const putKeys = Math.min(keys, putLimit)
  const putStarted = performance.now()
  const trie = await createMPT({ useNodePruning: true })
  for (let i = 0; i < putKeys; i++) await trie.put(pairs[i]![0], pairs[i]![1])
  const root = trie.root()
  const putS = (performance.now() - putStarted) / 1000

  let reference = expectedRoot
  if (putKeys < keys) {
    const stack = new StackTrie()
    for (let i = 0; i < putKeys; i++) stack.insert(pairs[i]![0], pairs[i]![1])
    reference = stack.root()
  }
  const rebuildS = (putS * keys) / putKeys
  return {
    keys,
    transferMB: round(pulled.bytes / 1e6, 1),
    transferS: round(pulled.seconds, 3),
    transferMBPerS: round(pulled.bytes / 1e6 / pulled.seconds, 1),
    decodeS: round(decodeS, 3),
    putKeys,
    putS: round(putS),
    putsPerS: Math.round(putKeys / putS),
    ...(putKeys < keys ? { extrapolatedFrom: putKeys } : {}),
    rebuildS: round(rebuildS),
    totalS: round(pulled.seconds + decodeS + rebuildS),
    rootCheckedAgainst: putKeys < keys ? 'StackTrie root of the put prefix' : 'synced root',
    rootsMatch: equalBytes(root, reference)
  }
}

if (import.meta.main) {
  const [keys = 100_000, putLimit = DEFAULT_PUT_LIMIT] = process.argv.slice(2).map(Number)
  const stack = new StackTrie()
  for (const [k, v] of accountEntries(1, keys)) stack.insert(k, v)
  const root = stack.root()
  console.log(JSON.stringify({ root: toHex(root), ...(await measureNaiveSync(1, keys, root, putLimit)) }))
}
