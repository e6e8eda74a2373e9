import { identify } from '@libp2p/identify'
import type { Libp2p } from 'libp2p'
import type { OpenStream } from '../../src/net/rpc.js'
import type { Item, TopicState } from '../../src/net/topic-protocols.js'
import type { TopicProvider } from '../../src/topic/provider.js'
import type { TopicAnswer, TopicProtocol, TopicServer } from '../../src/topic/topic-server.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { createTestNode, serveFrames } from '../helpers/libp2p.js'

/** A `TopicProvider` over arrays of items, one per topic, optionally pruned below `lowest`. */
export class MemoryTopicProvider implements TopicProvider {
  readonly topics = new Map<string, { items: Item[]; lowest: number }>()

  constructor(topics: Record<string, Item[]> = {}) {
    for (const [topic, items] of Object.entries(topics)) this.topics.set(topic, { items, lowest: 0 })
  }

  async getCurrentTopicState(topic: string): Promise<TopicState | null> {
    const t = this.topics.get(topic)
    if (t === undefined || t.items.length === 0) return null
    const head = t.items.length - 1
    return {
      lowest: t.lowest,
      head,
      headHash: keccak256(t.items[head]!.data),
      checkpoint: { number: head, root: new Uint8Array(32).fill(7) }
    }
  }

  async getContents(topic: string, from: number, amount: number): Promise<Item[]> {
    const t = this.topics.get(topic)
    if (t === undefined) return []
    return t.items.slice(Math.max(from, t.lowest), from + amount)
  }

  async getContentHashes(topic: string, from: number, to: number): Promise<Uint8Array[]> {
    return (await this.getContents(topic, from, to - from + 1)).map((i) => keccak256(i.data))
  }
}

/** Registers topic answer functions on `node` the way the service does: one `frameHandler` per protocol. */
export async function serveTopics(node: Libp2p, answers: Record<TopicProtocol, TopicAnswer>): Promise<void> {
  for (const [protocol, answer] of Object.entries(answers)) await serveFrames(node, protocol, (frame, peer) => answer(frame, peer.toString()))
}

/** A node on 127.0.0.1 speaking the topic protocols through `server`, with identify so peers learn them. */
export async function topicServerNode(server: TopicServer): Promise<Libp2p> {
  const node = await createTestNode({ identify: identify() })
  await serveTopics(node, server.handlers())
  return node
}

/** `openStream` for the Fetcher: streams from `node` (already connected to the peers it will ask). */
export function openStreamFrom(node: Libp2p): OpenStream {
  return (peer, protocol, options) => node.dialProtocol(peer, protocol, options)
}

/** A promise the test resolves when it likes: holds a server's answer back. */
export class Gate {
  private readonly waiting: (() => void)[] = []
  private opened = false

  wait(): Promise<void> {
    if (this.opened) return Promise.resolve()
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  open(): void {
    this.opened = true
    for (const resolve of this.waiting.splice(0)) resolve()
  }

  get waiters(): number {
    return this.waiting.length
  }
}
