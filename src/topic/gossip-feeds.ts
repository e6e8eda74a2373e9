import type { GossipSub, Message } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { signedBy } from './gossip.js'

interface Listener {
  /** Only messages this peer signed reach the listener; any well-formed message when undefined. */
  readonly publisher: PeerId | undefined
  readonly onMessage: (message: Message) => void
}

interface Feed {
  readonly decode: (data: Uint8Array) => unknown
  readonly listeners: Set<Listener>
}

/**
 * A node's gossipsub topics as shared feeds: one validator and one subscription per topic however many
 * listeners it has (topic handles, state syncs following a topic's checkpoints), so one listener can neither
 * replace another's validator nor unsubscribe it. The validator accepts what at least one listener would:
 * well-formed, and signed by one of their publishers (by anyone, when a listener names none); everything else
 * is rejected before gossipsub forwards it. Each listener gets only the messages its own publisher signed. The
 * last release of a topic unsubscribes it and removes its validator.
 */
export class GossipFeeds {
  private readonly pubsub: GossipSub
  private readonly feeds = new Map<string, Feed>()

  constructor(pubsub: GossipSub) {
    this.pubsub = pubsub
  }

  /** Listens to `topic` (its messages checked with `decode`, which throws on a malformed one); returns the release. */
  listen(
    topic: string,
    decode: (data: Uint8Array) => unknown,
    publisher: PeerId | undefined,
    onMessage: (message: Message) => void
  ): () => void {
    let feed = this.feeds.get(topic)
    if (feed === undefined) {
      // Subscribed first: when gossipsub refuses (not started), nothing is left half-registered.
      this.pubsub.subscribe(topic)
      feed = { decode, listeners: new Set() }
      if (this.feeds.size === 0) this.pubsub.addEventListener('message', this.dispatch)
      this.feeds.set(topic, feed)
      this.pubsub.topicValidators.set(topic, (_peer, message) => this.validate(topic, message))
    }
    const listener = { publisher, onMessage }
    feed.listeners.add(listener)
    let released = false
    return () => {
      if (released) return
      released = true
      this.release(topic, listener)
    }
  }

  private release(topic: string, listener: Listener): void {
    const feed = this.feeds.get(topic)
    if (feed === undefined || !feed.listeners.delete(listener) || feed.listeners.size > 0) return
    this.feeds.delete(topic)
    this.pubsub.topicValidators.delete(topic)
    if (this.feeds.size === 0) this.pubsub.removeEventListener('message', this.dispatch)
    try {
      this.pubsub.unsubscribe(topic)
    } catch {
      // The node stopped first (gossipsub throws once stopped): its subscriptions went with it.
    }
  }

  private validate(topic: string, message: Message): TopicValidatorResult {
    const feed = this.feeds.get(topic)
    if (feed === undefined) return TopicValidatorResult.Ignore
    let wanted = false
    for (const listener of feed.listeners) if (signedBy(message, listener.publisher)) wanted = true
    if (!wanted) return TopicValidatorResult.Reject
    try {
      feed.decode(message.data)
      return TopicValidatorResult.Accept
    } catch {
      return TopicValidatorResult.Reject
    }
  }

  private readonly dispatch = (event: CustomEvent<Message>): void => {
    const message = event.detail
    const feed = this.feeds.get(message.topic)
    if (feed === undefined) return
    for (const listener of [...feed.listeners]) {
      if (!signedBy(message, listener.publisher)) continue
      try {
        listener.onMessage(message)
      } catch {
        // A listener's failure is its own: the others still get the message.
      }
    }
  }
}
