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
}
