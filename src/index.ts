/**
 * @packageDocumentation
 *
 * DSFG: a late joiner of a js-libp2p gossipsub topic catches up on everything the topic carried, from
 * untrusted peers, with every byte verified against a Merkle-Patricia trie root.
 */
export * from './errors.js'
export { keccak256, EMPTY_ROOT } from './trie/keccak.js'
export {
  decodeNode,
  nodeChildren,
  type TrieNode,
  type BranchNode,
  type ExtensionNode,
  type LeafNode,
  type ChildRef,
  type HashChild,
  type NodeLeaf
} from './trie/node.js'
export type { KVStore, BatchOp } from './store/kv-store.js'
export { MemoryStore } from './store/memory-store.js'
export { toHex, fromHex } from './util/hex.js'
