/**
 * Range proofs as snap sync uses them: a run of consecutive leaves plus the proofs of the two edge keys of the
 * range, checked against a root. The verifier follows go-ethereum's `VerifyRangeProof` in the version that
 * still takes the last edge key (a right edge may be a key the trie does not hold), with the later checks for
 * path prefixes and for keys outside the edges added.
 * reference: go-ethereum@02b73d4ea7181464175e0a6cbecc0a3a2655a562 trie/proof.go
 */
import { InvalidInputError, InvalidProofError } from '../errors.js'
import type { KVStore } from '../store/kv-store.js'
import { EMPTY_ROOT } from '../trie/keccak.js'
import { compareBytes, equalBytes } from '../util/bytes.js'
import { toHex } from '../util/hex.js'
import { MAX_RANGE_KEY_BYTES } from '../constants.js'
import { checkBytes, checkBytesArray, checkHash } from './input.js'
import {
  comparePaths,
  type FullNode,
  fromTrieNode,
  hashRoot,
  hasPrefixAt,
  insert,
  keyToPath,
  type Path,
  type PathNode,
  rank,
  TERMINATOR
} from './path-trie.js'
import { createProof, decodeProofNode, type ProofOptions } from './proof.js'
import { ProofNodes } from './proof-nodes.js'

export interface RangeProofResult {
  /** Whether the trie holds keys to the right of the last key of the range. */
  more: boolean
}

/**
 * The proof for the range from `firstKey` to `lastKey`: the union of both edge keys' proofs, each node once.
 * Either edge may be a key the trie does not hold.
 */
export async function createRangeProof(
  store: KVStore,
  root: Uint8Array,
  firstKey: Uint8Array,
  lastKey: Uint8Array,
  options?: ProofOptions
): Promise<Uint8Array[]> {
  const first = await createProof(store, root, firstKey, options)
  const last = await createProof(store, root, lastKey, options)
  const seen = new Set(first.map((blob) => toHex(blob)))
  const proof = [...first]
  for (const blob of last) {
    const hex = toHex(blob)
    if (seen.has(hex)) continue
    seen.add(hex)
    proof.push(blob)
  }
  return proof
}

/**
 * Checks that `keys`/`values` are exactly the leaves of the trie at `root` between `firstKey` and `lastKey`
 * (both inclusive), with no gap, given `proof`, the union of the two edge keys' proofs. Throws
 * `InvalidProofError` when they are not. The cases, as in go-ethereum:
 *
 * - empty `proof`: the leaves must be the whole trie (the edge keys are not used);
 * - no leaves: `proof` must show that nothing lies at or right of `firstKey` (`lastKey` is not used);
 * - one leaf with `firstKey` = `lastKey` = its key: a plain proof of that leaf;
 * - otherwise two edge proofs; each edge may be a key the trie does not hold, the edge keys must have the
 *   same length, and every key must lie between them.
 *
 * `more` tells whether the trie holds keys right of the last one given. Nodes of `proof` that are not needed
 * are ignored (a bloated proof is accepted).
 */
export function verifyRangeProof(
  root: Uint8Array,
  firstKey: Uint8Array,
  lastKey: Uint8Array,
  keys: Uint8Array[],
  values: Uint8Array[],
  proof: Uint8Array[]
): RangeProofResult {
  checkHash(root, 'root')
  checkBytes(firstKey, 'firstKey')
  checkBytes(lastKey, 'lastKey')
  checkBytesArray(keys, 'keys')
  checkBytesArray(values, 'values')
  checkBytesArray(proof, 'proof')
  if (firstKey.length > MAX_RANGE_KEY_BYTES || lastKey.length > MAX_RANGE_KEY_BYTES) {
    throw new InvalidInputError(`range edge keys must be at most ${MAX_RANGE_KEY_BYTES} bytes`)
  }
  if (keys.length !== values.length) {
    throw new InvalidProofError(`inconsistent proof data, keys: ${keys.length}, values: ${values.length}`)
  }
  for (let i = 0; i < keys.length; i++) {
    if (i < keys.length - 1) {
      if (compareBytes(keys[i]!, keys[i + 1]!) >= 0) throw new InvalidProofError('range is not monotonically increasing')
      // go-ethereum's rule (its keys all have one length, so a prefix can only be corrupt data). It applies
      // to a key and any later key it prefixes, since those sort right after it.
      if (startsWith(keys[i + 1]!, keys[i]!)) throw new InvalidProofError('range contains path prefixes')
    }
    if (values[i]!.length === 0) throw new InvalidProofError('range contains deletion')
    if (keys[i]!.length > MAX_RANGE_KEY_BYTES) {
      throw new InvalidProofError(`range key of ${keys[i]!.length} bytes, more than ${MAX_RANGE_KEY_BYTES}`)
    }
  }

  if (proof.length === 0) {
    let trie: PathNode | null = null
    for (let i = 0; i < keys.length; i++) trie = insert(trie, keyToPath(keys[i]!), values[i]!)
    checkRoot(trie, root)
    return { more: false }
  }

  const nodes = new ProofNodes(proof)
  if (keys.length === 0) {
    // The empty trie has no node to prove anything with, and nothing right of any key.
    if (equalBytes(root, EMPTY_ROOT)) return { more: false }
    const path = keyToPath(firstKey)
    const { node, value } = proofToPath(root, null, path, nodes, true)
    if (value !== null || hasRightElement(node, path)) throw new InvalidProofError('more entries available')
    return { more: false }
  }

  if (compareBytes(firstKey, keys[0]!) > 0) {
    throw new InvalidProofError('unexpected key-value pairs preceding the requested range')
  }
  if (compareBytes(keys[keys.length - 1]!, lastKey) > 0) {
    throw new InvalidProofError('unexpected key-value pairs following the requested range')
  }

  const firstPath = keyToPath(firstKey)
  if (keys.length === 1 && equalBytes(firstKey, lastKey)) {
    // Both edges are the one key: there is one path to resolve, and it must end in that key's leaf.
    // (The bounds checked above make keys[0] that key.)
    const { node, value } = proofToPath(root, null, firstPath, nodes, false)
    if (value === null || !equalBytes(value, values[0]!)) throw new InvalidProofError('correct proof but invalid data')
    return { more: hasRightElement(node, firstPath) }
  }

  if (compareBytes(firstKey, lastKey) >= 0) throw new InvalidProofError('invalid edge keys')
  if (firstKey.length !== lastKey.length) throw new InvalidProofError('inconsistent edge keys')
  const lastPath = keyToPath(lastKey)
  // Resolve both edge paths into one partial trie (the second walk reuses what the first resolved), cut out
  // everything strictly between them, and put the claimed leaves back: if they are the trie's leaves in that
  // range, the root comes out as before.
  let trie: PathNode | null = proofToPath(root, null, firstPath, nodes, true).node
  trie = proofToPath(root, trie, lastPath, nodes, true).node
  if (unsetInternal(trie, firstPath, lastPath)) trie = null
  for (let i = 0; i < keys.length; i++) trie = insert(trie, keyToPath(keys[i]!), values[i]!)
  checkRoot(trie, root)
  return { more: hasRightElement(trie, keyToPath(keys[keys.length - 1]!)) }
}

function checkRoot(trie: PathNode | null, root: Uint8Array): void {
  const have = hashRoot(trie)
  if (!equalBytes(have, root)) throw new InvalidProofError(`invalid proof, want hash ${toHex(root)}, got ${toHex(have)}`)
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false
  return true
}

/**
 * Resolves the nodes on `path` from the proof into the partial trie `root` (created from the root node when
 * `null`). Returns the trie and the value at `path`, `null` when the path leaves the trie; that is an error
 * unless `allowAbsent`. Subtries off the path stay hashes.
 */
function proofToPath(
  rootHash: Uint8Array,
  root: PathNode | null,
  path: Path,
  nodes: ProofNodes,
  allowAbsent: boolean
): { node: PathNode; value: Uint8Array | null } {
  let depth = 0
  const resolve = (hash: Uint8Array): PathNode => {
    const blob = nodes.get(hash)
    if (blob === undefined) throw new InvalidProofError(`proof node (hash ${toHex(hash)}) missing`)
    return fromTrieNode(decodeProofNode(blob, depth++))
  }
  const top = root ?? resolve(rootHash)
  let parent = top
  let pos = 0
  for (;;) {
    // One step down from `parent`; `slot` is where the child hangs, to link it in once resolved.
    let child: PathNode | null
    let slot = -1
    if (parent.kind === 'short') {
      if (!hasPrefixAt(path, pos, parent.key)) child = null
      else {
        child = parent.val
        pos += parent.key.length
      }
    } else if (parent.kind === 'full') {
      slot = path[pos]!
      child = parent.children[slot] ?? null
      pos++
    } else {
      throw new InvalidProofError(`proof path runs into a ${parent.kind} node`)
    }
    if (child === null) {
      if (allowAbsent) return { node: top, value: null }
      throw new InvalidProofError('the node is not contained in trie')
    }
    if (child.kind === 'value') return { node: top, value: child.value }
    if (child.kind === 'hash') {
      child = resolve(child.hash)
      if (parent.kind === 'short') parent.val = child
      else (parent as FullNode).children[slot] = child
    }
    parent = child
  }
}

/**
 * Cuts every reference strictly between the edge paths `left` < `right` (same length) out of the partial
 * trie, and the edge leaves themselves: all of that is re-created by inserting the range's leaves. Returns
 * true when the whole trie lies inside the range, i.e. the trie becomes empty.
 */
function unsetInternal(root: PathNode, left: Path, right: Path): boolean {
  // Step down to the fork point: the first node where the two paths part or one of them leaves the trie.
  let pos = 0
  let parent: PathNode | null = null
  let node = root
  let forkLeft = 0
  let forkRight = 0
  for (;;) {
    if (node.kind === 'short') {
      forkLeft = compareSegment(left, pos, node.key)
      forkRight = compareSegment(right, pos, node.key)
      if (forkLeft !== 0 || forkRight !== 0) break
      parent = node
      pos += node.key.length
      node = node.val
    } else if (node.kind === 'full') {
      const l = node.children[left[pos]!] ?? null
      const r = node.children[right[pos]!] ?? null
      if (l === null || r === null || l !== r) break
      parent = node
      node = l
      pos++
    } else {
      throw new InvalidProofError(`range edges run into a ${node.kind} node`)
    }
  }

  if (node.kind === 'short') {
    // Both edges on the same side of this node's key: the range between them holds nothing of the trie.
    if (forkLeft === forkRight) throw new InvalidProofError('empty range')
    if (forkLeft !== 0 && forkRight !== 0) return removeFrom(parent, left, pos)
    if (forkRight !== 0) {
      // The left edge runs on through this node: it is the edge leaf itself, or the cut continues below.
      if (node.val.kind === 'value') return removeFrom(parent, left, pos)
      unset(node, node.val, left.subarray(pos), node.key.length, false)
      return false
    }
    if (node.val.kind === 'value') return removeFrom(parent, right, pos)
    unset(node, node.val, right.subarray(pos), node.key.length, true)
    return false
  }
  // A full node: drop the children strictly between the edges, then cut along each edge below it.
  const lo = rank(left[pos]!)
  const hi = rank(right[pos]!)
  for (let i = 0; i <= TERMINATOR; i++) {
    const r = rank(i)
    if (r > lo && r < hi) node.children[i] = null
  }
  unset(node, node.children[left[pos]!] ?? null, left.subarray(pos), 1, false)
  unset(node, node.children[right[pos]!] ?? null, right.subarray(pos), 1, true)
  return false
}

/** Removes the node at `path[pos - 1]` from its full-node parent; true when there is no parent (the root). */
function removeFrom(parent: PathNode | null, path: Path, pos: number): boolean {
  if (parent === null) return true
  childSlots(parent)[path[pos - 1]!] = null
  return false
}

function childSlots(node: PathNode): (PathNode | null)[] {
  if (node.kind !== 'full') throw new InvalidProofError(`expected a branch above a leaf, found a ${node.kind} node`)
  return node.children
}

/**
 * Cuts, below the fork point, everything on one side of the edge path `key` (from position `pos` on):
 * the right side for the left edge (`removeLeft` false), the left side for the right edge. What lies on that
 * side is inside the range. The edge's own leaf is cut too; a subtrie the edge path merely passes by is kept.
 */
function unset(parent: PathNode, child: PathNode | null, key: Path, pos: number, removeLeft: boolean): void {
  if (child === null) return
  switch (child.kind) {
    case 'full': {
      const at = rank(key[pos]!)
      for (let i = 0; i <= TERMINATOR; i++) {
        const r = rank(i)
        if (removeLeft ? r < at : r > at) child.children[i] = null
      }
      unset(child, child.children[key[pos]!] ?? null, key, pos + 1, removeLeft)
      return
    }
    case 'short': {
      if (!hasPrefixAt(key, pos, child.key)) {
        // The edge path leaves the trie inside this node's key: the whole subtrie is on one side of it.
        const side = comparePaths(child.key, key.subarray(pos))
        if (removeLeft ? side < 0 : side > 0) childSlots(parent)[key[pos - 1]!] = null
        return
      }
      if (child.val.kind === 'value') {
        childSlots(parent)[key[pos - 1]!] = null
        return
      }
      unset(child, child.val, key, pos + child.key.length, removeLeft)
      return
    }
    case 'value':
      // The edge key ends at a branch's value slot: it is the edge leaf.
      childSlots(parent)[TERMINATOR] = null
      return
    case 'hash':
      throw new InvalidProofError('range edge path runs into an unresolved node')
    default: {
      const exhaustive: never = child
      throw new InvalidProofError(`unknown node kind ${String(exhaustive)}`)
    }
  }
}

/** Compares `path` from `pos` with `segment`, over the segment's length at most: -1, 0 or 1. */
function compareSegment(path: Path, pos: number, segment: Path): number {
  const end = Math.min(path.length, pos + segment.length)
  return comparePaths(path.subarray(pos, end), segment)
}

/**
 * Whether the trie holds a key right of `path`. The path must be resolved down to where it ends or leaves
 * the trie; everything right of it may still be hashes, which count as present.
 */
function hasRightElement(root: PathNode | null, path: Path): boolean {
  let node = root
  let pos = 0
  while (node !== null) {
    switch (node.kind) {
      case 'full': {
        const at = rank(path[pos]!)
        for (let i = 0; i < 16; i++) if (i > at && node.children[i] != null) return true
        node = node.children[path[pos]!] ?? null
        pos++
        break
      }
      case 'short':
        if (!hasPrefixAt(path, pos, node.key)) return comparePaths(node.key, path.subarray(pos)) > 0
        pos += node.key.length
        node = node.val
        break
      case 'value':
        return false
      case 'hash':
        throw new InvalidProofError('range proof path runs into an unresolved node')
      default: {
        const exhaustive: never = node
        throw new InvalidProofError(`unknown node kind ${String(exhaustive)}`)
      }
    }
  }
  return false
}
