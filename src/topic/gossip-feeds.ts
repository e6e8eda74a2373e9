import type { GossipSub, Message } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import {
  MAX_OPEN_GOSSIP_BYTES,
  OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE,
  OPEN_GOSSIP_KIB_PER_SECOND_PER_TOPIC
} from '../constants.js'
import { TokenBuckets } from '../net/rate-limiter.js'
import type { Clock } from '../util/clock.js'
import { type Log, silentLog } from '../util/log.js'
import { signedBy } from './gossip.js'

/** Checks and decodes a message's data for one listener; throws (or rejects) when the listener wants none of it. */
export type GossipDecoder<T> = (data: Uint8Array) => T | Promise<T>

interface Listener {
  /** Only messages this peer signed reach the listener; any author when undefined. */
  readonly publisher: PeerId | undefined
  readonly decode: GossipDecoder<unknown>
  readonly onMessage: (value: unknown, message: Message) => void
}

export interface GossipFeedsInit {
  /** Largest message accepted for listeners without a publisher. @default MAX_OPEN_GOSSIP_BYTES (64 KiB) */
  maxOpenBytes?: number
  /** KiB a second (at least one per message) accepted for listeners without a publisher, per topic. @default OPEN_GOSSIP_KIB_PER_SECOND_PER_TOPIC (1024) */
  openKibPerSecondPerTopic?: number
  /** The same, per topic and propagation source. @default OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE (256) */
  openKibPerSecondPerSource?: number
  /** @default systemClock */
  clock?: Clock
  /** Where messages that fail to decode and listeners that throw are logged (the service's `dsfg:gossip`). @default silentLog */
  log?: Log
}

/** Propagation sources whose open-gossip budget is tracked at once; the least recently seen are forgotten past it. */
const MAX_TRACKED_SOURCES = 1024

/**
 * A node's gossipsub topics as shared feeds: one validator and one subscription per topic however many
 * listeners it has (topic handles, state syncs following a topic's checkpoints), so one listener can neither
 * replace another's validator nor unsubscribe it. The validator accepts what at least one listener would: from
 * its publisher (anyone, when it names none) and accepted by its decoder (which may be asynchronous, as a
 * signature check is); everything else is rejected before gossipsub forwards it. Each listener gets only what
 * it would accept, decoded. The last release of a topic unsubscribes it and removes its validator.
 *
 * A message no publisher vouches for (only listeners without one would take it) is bounded first: past
 * `maxOpenBytes`, or past the topic's or its propagation source's rate, it is IGNOREd before any listener
 * decodes it. A publisher's own messages are never limited here.
 */
export class GossipFeeds {
  private readonly pubsub: GossipSub
  private readonly feeds = new Map<string, Set<Listener>>()
  private readonly maxOpenBytes: number
  private readonly openByTopic: TokenBuckets
  private readonly openBySource: TokenBuckets
  private readonly log: Log

  constructor(pubsub: GossipSub, init: GossipFeedsInit = {}) {
    this.pubsub = pubsub
    this.log = init.log ?? silentLog
    this.maxOpenBytes = init.maxOpenBytes ?? MAX_OPEN_GOSSIP_BYTES
    const perTopic = init.openKibPerSecondPerTopic ?? OPEN_GOSSIP_KIB_PER_SECOND_PER_TOPIC
    const perSource = init.openKibPerSecondPerSource ?? OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE
    this.openByTopic = new TokenBuckets({ ratePerSecond: perTopic, burst: perTopic, clock: init.clock })
    this.openBySource = new TokenBuckets({
      ratePerSecond: perSource,
      burst: perSource,
      maxKeys: MAX_TRACKED_SOURCES,
      clock: init.clock
    })
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
      this.pubsub.topicValidators.set(topic, (source, message) => this.validate(topic, source, message))
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
    } catch (err) {
      // The node stopped first (gossipsub throws once stopped): its subscriptions went with it.
      this.log.trace('unsubscribing %s: %e', topic, err)
    }
  }

  private async validate(topic: string, source: PeerId, message: Message): Promise<TopicValidatorResult> {
    const listeners = this.feeds.get(topic)
    if (listeners === undefined) return TopicValidatorResult.Ignore
    const open: Listener[] = []
    for (const listener of [...listeners]) {
      if (listener.publisher === undefined) open.push(listener)
      else if ((await accepted(listener, message, this.log)) !== undefined) return TopicValidatorResult.Accept
    }
    if (open.length === 0) return TopicValidatorResult.Reject
    // Nobody vouches for it: bounded in size and rate before any decoder spends time on it.
    if (!this.admitOpen(topic, source, message.data.length)) return TopicValidatorResult.Ignore
    for (const listener of open) {
      if ((await accepted(listener, message, this.log)) !== undefined) return TopicValidatorResult.Accept
    }
    return TopicValidatorResult.Reject
  }

  /** Whether a message of `bytes` from `source` fits the open-gossip bounds of `topic`; takes its tokens if so. */
  private admitOpen(topic: string, source: PeerId, bytes: number): boolean {
    if (bytes > this.maxOpenBytes) return false
    const kib = Math.max(1, Math.ceil(bytes / 1024))
    const sourceKey = `${topic}\n${source.toString()}`
    // Both buckets must have room before either is charged, so an ignored message costs nothing.
    if (this.openBySource.waitTime(sourceKey, kib) > 0 || this.openByTopic.waitTime(topic, kib) > 0) return false
    return this.openBySource.take(sourceKey, kib) && this.openByTopic.take(topic, kib)
  }

  private readonly dispatch = (event: CustomEvent<Message>): void => {
    const message = event.detail
    const listeners = this.feeds.get(message.topic)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      void accepted(listener, message, this.log).then((result) => {
        if (result === undefined) return
        try {
          listener.onMessage(result.value, message)
        } catch (err) {
          // A listener's failure is its own: the others still get the message.
          this.log.error('a listener of %s threw: %e', message.topic, err)
        }
      })
    }
  }
}

/** What `listener` makes of `message`: its decoded value, or `undefined` when it would not accept it. */
async function accepted(listener: Listener, message: Message, log: Log): Promise<{ value: unknown } | undefined> {
  if (!signedBy(message, listener.publisher)) return undefined
  try {
    return { value: await listener.decode(message.data) }
  } catch (err) {
    // Gossipsub weighs the sender (the validator rejects it); here it is only worth a trace.
    log.trace('a message on %s does not decode: %e', message.topic, err)
    return undefined
  }
}
