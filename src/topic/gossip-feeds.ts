import type { GossipSub, Message } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { signedBy } from './gossip.js'

/** Checks and decodes a message's data for one listener; throws (or rejects) when the listener wants none of it. */
export type GossipDecoder<T> = (data: Uint8Array) => T | Promise<T>

interface Listener {
  /** Only messages this peer signed reach the listener; any author when undefined. */
  readonly publisher: PeerId | undefined
  readonly decode: GossipDecoder<unknown>
  readonly onMessage: (value: unknown, message: Message) => void
}

/**
 * A node's gossipsub topics as shared feeds: one validator and one subscription per topic however many
 * listeners it has (topic handles, state syncs following a topic's checkpoints), so one listener can neither
 * replace another's validator nor unsubscribe it. The validator accepts what at least one listener would: from
 * its publisher (anyone, when it names none) and accepted by its decoder (which may be asynchronous, as a
 * signature check is); everything else is rejected before gossipsub forwards it. Each listener gets only what
 * it would accept, decoded. The last release of a topic unsubscribes it and removes its validator.
 */
export class GossipFeeds {
  private readonly pubsub: GossipSub
  private readonly feeds = new Map<string, Set<Listener>>()

  constructor(pubsub: GossipSub) {
    this.pubsub = pubsub
  }

  /** Listens to `topic`, each message checked and decoded with `decode`; returns the release. */
  listen<T>(
    topic: string,
    decode: GossipDecoder<T>,
    publisher: PeerId | undefined,
    onMessage: (value: T, message: Message) => void
  ): () => void {
    let listeners = this.feeds.get(topic)
    if (listeners === undefined) {
      // Subscribed first: when gossipsub refuses (not started), nothing is left half-registered.
      this.pubsub.subscribe(topic)
      listeners = new Set()
      if (this.feeds.size === 0) this.pubsub.addEventListener('message', this.dispatch)
      this.feeds.set(topic, listeners)
      this.pubsub.topicValidators.set(topic, (_peer, message) => this.validate(topic, message))
    }
    const listener: Listener = { publisher, decode, onMessage: onMessage as Listener['onMessage'] }
    listeners.add(listener)
    let released = false
    return () => {
      if (released) return
      released = true
      this.release(topic, listener)
    }
  }

  private release(topic: string, listener: Listener): void {
    const listeners = this.feeds.get(topic)
    if (listeners === undefined || !listeners.delete(listener) || listeners.size > 0) return
    this.feeds.delete(topic)
    this.pubsub.topicValidators.delete(topic)
    if (this.feeds.size === 0) this.pubsub.removeEventListener('message', this.dispatch)
    try {
      this.pubsub.unsubscribe(topic)
    } catch {
      // The node stopped first (gossipsub throws once stopped): its subscriptions went with it.
    }
  }

  private async validate(topic: string, message: Message): Promise<TopicValidatorResult> {
    const listeners = this.feeds.get(topic)
    if (listeners === undefined) return TopicValidatorResult.Ignore
    for (const listener of [...listeners]) {
      if ((await accepted(listener, message)) !== undefined) return TopicValidatorResult.Accept
    }
    return TopicValidatorResult.Reject
  }

  private readonly dispatch = (event: CustomEvent<Message>): void => {
    const message = event.detail
    const listeners = this.feeds.get(message.topic)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      void accepted(listener, message).then((result) => {
        if (result === undefined) return
        try {
          listener.onMessage(result.value, message)
        } catch {
          // A listener's failure is its own: the others still get the message.
        }
      })
    }
  }
}

/** What `listener` makes of `message`: its decoded value, or `undefined` when it would not accept it. */
async function accepted(listener: Listener, message: Message): Promise<{ value: unknown } | undefined> {
  if (!signedBy(message, listener.publisher)) return undefined
  try {
    return { value: await listener.decode(message.data) }
  } catch {
    return undefined
  }
}
