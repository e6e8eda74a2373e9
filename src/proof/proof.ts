/**
 * Single-key Merkle proofs in the shape of Ethereum's `eth_getProof` (EIP-1186): the node blobs on the path
 * from the root towards a key, root first, embedded nodes inside their parent's blob.
 *
 * Verifier choice: ours, not @ethereumjs/mpt's. "Use a library's verifier where it is correct and fast; measure
 * before writing your own": bench/proof.ts measured mpt 10.1.3 `verifyMerkleProof` / `verifyMerkleRangeProof`
 * against ours (Node 22.23 on a 2-core shared AMD EPYC container, best of 5 alternating 400 ms rounds, lowest
 * and highest of two runs; proofs/s):
 *
 *                                              ours            mpt        ours/mpt
 *   verifyProof, 9 real eth_getProof vectors   4,540-4,870     2,660-3,690   1.2-1.8
 *   verifyProof, 10k-key trie, present keys    7,450-8,750     5,500-6,600   1.3-1.4
 *   verifyProof, 10k-key trie, absent keys     7,480-9,810     5,670-7,500   1.3
 *   range proof, 1 key of 10k                  7,450-7,850     4,850-6,010   1.3-1.5
 *   range proof, 10 keys                       1,740-2,180       420-490     3.5-5.2
 *   range proof, 100 keys                        510-610          58-73      8.4-8.8
 *   range proof, 1000 keys                        60-62          6.3-6.6     9.2-9.9
 *   range proof, all 10k keys, no proof          4.5-6.3         0.5-0.7     9.6-9.7
 *
 * keccak-256 (noble, pure JS) is over half of our time and mpt hashes the same nodes. For single proofs ours
 * saves building a throwaway trie over an async database per proof; for ranges it hashes the rebuilt trie
 * once where mpt re-hashes the path to the root after every insert. mpt was correct where we
 * looked: on 300 replayed range cases (existent and non-existent edges, dropped element, keys before the
 * first edge, zero and one element) the two gave the same verdict every time. We still use our own because it
 * is faster, synchronous, throws `InvalidProofError` with go-ethereum's messages where mpt throws plain
 * `Error`s ("Invalid proof provided", "Missing node in DB"), takes a proof in any order (mpt needs the root
 * node first), and has the checks go-ethereum added after mpt's port (path prefixes, keys outside the edges).
 */
import { AbortError, InvalidNodeError, InvalidProofError, MissingNodeError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT, keccak256 } from '../trie/keccak.js'
import { bytesToNibbles, type Nibbles } from '../trie/nibbles.js'
import { type ChildRef, decodeNode, type TrieNode } from '../trie/node.js'
import { equalBytes } from '../util/bytes.js'
import { toHex } from '../util/hex.js'
import { checkBytes, checkBytesArray, checkHash } from './input.js'
import { ProofNodes } from './proof-nodes.js'

export interface ProofOptions {
  signal?: AbortSignal
}

/**
 * The proof for `key` in the trie at `root`: every hash-referenced node on the key's path, root first. For a
 * key the trie does not hold, the proof ends with the node where the path leaves the trie, which is what
 * proves the absence. The empty root has the empty proof.
 *
 * Throws `MissingNodeError` when the store lacks a node on the path, `InvalidNodeError` when a stored blob
 * does not hash to its key or does not decode, `AbortError` (its cause the signal's reason) once
 * `options.signal` is aborted, before the next node is read.
 */
export async function createProof(
  store: KVStore,
  root: Uint8Array,
  key: Uint8Array,
  options?: ProofOptions
): Promise<Uint8Array[]> {
  checkHash(root, 'root')
  checkBytes(key, 'key')
  if (equalBytes(root, EMPTY_ROOT)) return []
  const path = bytesToNibbles(key)
  const proof: Uint8Array[] = []
  let hash = root
  let pos = 0
  for (;;) {
    const signal = options?.signal
    if (signal?.aborted === true) throw new AbortError('proof aborted', { cause: signal.reason })
    const blob = await store.get(hash)
    if (blob === undefined) throw new MissingNodeError(hash, `trie node ${toHex(hash)} missing from store`)
    // A store is local but not infallible; a proof built from a corrupt blob would only fail at the verifier.
    if (!equalBytes(keccak256(blob), hash)) throw new InvalidNodeError(`stored node ${toHex(hash)} has another hash`)
    proof.push(blob)
    let node = decodeNode(blob)
    for (;;) {
      const next = step(node, path, pos)
      if (next.kind !== 'child') return proof
      pos = next.pos
      if (next.ref.kind === 'hash') {
        hash = next.ref.hash
        break
      }
      node = next.ref.node
    }
  }
}

/**
 * Checks a proof for `key` against `root`. Returns the value, or `null` when the proof shows the key is absent.
 * Throws `InvalidProofError` when the proof does not prove either: a node the path needs is missing (every
 * node is found by its keccak-256, so a changed byte makes its node missing) or a node is malformed.
 *
 * Nodes the path does not use are ignored and the order of the list does not matter, as in go-ethereum's
 * `VerifyProof`; only the nodes reached from `root` decide the answer, so extra nodes cannot change it.
 */
export function verifyProof(root: Uint8Array, key: Uint8Array, proof: Uint8Array[]): Uint8Array | null {
  checkHash(root, 'root')
  checkBytes(key, 'key')
  checkBytesArray(proof, 'proof')
  // The empty trie holds nothing; it has no node to look up, so any proof of it is a proof of absence.
  if (equalBytes(root, EMPTY_ROOT)) return null
  const nodes = new ProofNodes(proof)
  const path = bytesToNibbles(key)
  let hash = root
  let pos = 0
  for (let depth = 0; ; depth++) {
    const blob = nodes.get(hash)
    if (blob === undefined) throw new InvalidProofError(`proof node ${depth} (hash ${toHex(hash)}) missing`)
    let node = decodeProofNode(blob, depth)
    for (;;) {
      const next = step(node, path, pos)
      if (next.kind === 'value') return next.value
      if (next.kind === 'absent') return null
      pos = next.pos
      if (next.ref.kind === 'hash') {
        hash = next.ref.hash
        break
      }
      node = next.ref.node
    }
  }
}

/** Decodes a proof node, turning a malformed one into the proof's failure. */
export function decodeProofNode(blob: Uint8Array, depth: number): TrieNode {
  try {
    return decodeNode(blob)
  } catch (err) {
    if (!(err instanceof InvalidNodeError)) throw err
    throw new InvalidProofError(`bad proof node ${depth}: ${err.message}`, { cause: err })
  }
}

/** Where a key's path goes from one node: its value, nowhere (absent), or a child with the nibbles consumed. */
type Step = { kind: 'value'; value: Uint8Array } | { kind: 'absent' } | { kind: 'child'; ref: ChildRef; pos: number }

const ABSENT: Step = { kind: 'absent' }

function step(node: TrieNode, path: Nibbles, pos: number): Step {
  switch (node.kind) {
    case 'leaf':
      return node.path.length === path.length - pos && matchesAt(path, pos, node.path)
        ? { kind: 'value', value: node.value }
        : ABSENT
    case 'extension':
      return matchesAt(path, pos, node.path) ? { kind: 'child', ref: node.child, pos: pos + node.path.length } : ABSENT
    case 'branch': {
      if (pos === path.length) return node.value === null ? ABSENT : { kind: 'value', value: node.value }
      const ref = node.children[path[pos]!]
      return ref == null ? ABSENT : { kind: 'child', ref, pos: pos + 1 }
    }
    default: {
      const exhaustive: never = node
      throw new InvalidNodeError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

/** Whether `path` continues with `segment` at `pos`. */
function matchesAt(path: Nibbles, pos: number, segment: Nibbles): boolean {
  if (path.length - pos < segment.length) return false
  for (let i = 0; i < segment.length; i++) if (path[pos + i] !== segment[i]) return false
  return true
}
