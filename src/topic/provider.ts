import type { Item, TopicState } from '../net/topic-protocols.js'

/**
 * The upper-layer hooks of the DSFG design: what a node serves about a topic. The default `TopicStore`
 * implements it over a `KVStore`; an application may implement it over its own storage instead.
 */
export interface TopicProvider {
  /** Our state for `topic`, or `null` when we hold no item of it. */
  getCurrentTopicState(topic: string): Promise<TopicState | null>
  /** Items `from .. from+amount-1` that we hold, ascending (a prefix when we hold fewer). */
  getContents(topic: string, from: number, amount: number): Promise<Item[]>
  /** keccak256 of items `from .. to` (inclusive) that we hold, ascending (a prefix when we hold fewer). */
  getContentHashes(topic: string, from: number, to: number): Promise<Uint8Array[]>
  /**
   * A range proof of items `from..to` against the topic trie at `root` (one of our checkpoint roots):
   * `createRangeProof(store, root, uint64BE(from), uint64BE(to))`. Rejects when that root's trie is not held.
   * Without it the node serves no proven contents, which peers syncing against a checkpoint ask for.
   */
  getContentsProof?(topic: string, root: Uint8Array, from: number, to: number): Promise<Uint8Array[]>
}
