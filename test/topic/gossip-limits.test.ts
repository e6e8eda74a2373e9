import { generateKeyPair } from '@libp2p/crypto/keys'
import { type GossipSub, type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_OPEN_GOSSIP_BYTES, OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE } from '../../src/constants.js'
import { GossipFeeds } from '../../src/topic/gossip-feeds.js'
import { FakeClock } from '../helpers/fake-clock.js'

type Validator = (source: PeerId, message: Message) => Promise<TopicValidatorResult>

/** Just what GossipFeeds touches of gossipsub: its validators are called directly, as gossipsub would. */
class ValidatorsOnly extends EventTarget {
  readonly topicValidators = new Map<string, Validator>()
  subscribe(): void {}
  unsubscribe(): void {}
}

function signed(topic: string, from: PeerId, data: Uint8Array): Message {
  return { type: 'signed', topic, from, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey! } as Message
}

describe('GossipFeeds bounds gossip that no publisher vouches for', () => {
  let author: PeerId
  let relayA: PeerId
  let relayB: PeerId
  let publisher: PeerId
  beforeAll(async () => {
    ;[author, relayA, relayB, publisher] = await Promise.all(
      Array.from({ length: 4 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')))
    )
  })

  function feeds(init: ConstructorParameters<typeof GossipFeeds>[1] = {}) {
    const pubsub = new ValidatorsOnly()
    const clock = new FakeClock()
    const f = new GossipFeeds(pubsub as unknown as GossipSub, { clock, ...init })
    let decoded = 0
    const decode = (data: Uint8Array): Uint8Array => {
      decoded++
      if (data.length === 0) throw new Error('empty')
      return data
    }
    return { pubsub, clock, f, decode, decoded: () => decoded }
  }

  it('ignores an open message past the size bound before decoding it, and rejects a malformed one', async () => {
    const { pubsub, f, decode, decoded } = feeds()
    f.listen('t', decode, undefined, () => undefined)
    const validate = pubsub.topicValidators.get('t')!
    const big = new Uint8Array(MAX_OPEN_GOSSIP_BYTES + 1).fill(1)
    expect(await validate(relayA, signed('t', author, big))).toBe(TopicValidatorResult.Ignore)
    expect(decoded()).toBe(0)
    expect(await validate(relayA, signed('t', author, new Uint8Array(MAX_OPEN_GOSSIP_BYTES).fill(1)))).toBe(TopicValidatorResult.Accept)
    expect(await validate(relayA, signed('t', author, new Uint8Array(0)))).toBe(TopicValidatorResult.Reject)
  })

  it('limits each propagation source, then the topic, and refills with time', async () => {
    const { pubsub, clock, f, decode } = feeds({ openKibPerSecondPerTopic: 100, openKibPerSecondPerSource: 60 })
    f.listen('t', decode, undefined, () => undefined)
    const validate = pubsub.topicValidators.get('t')!
    const kib = new Uint8Array(1024).fill(7)
    const run = async (source: PeerId, n: number): Promise<number> => {
      let accepted = 0
      for (let i = 0; i < n; i++) if ((await validate(source, signed('t', author, kib))) === TopicValidatorResult.Accept) accepted++
      return accepted
    }
    // One source gets its own budget and no more; a second gets what is left of the topic's.
    expect(await run(relayA, 100)).toBe(60)
    expect(await run(relayB, 100)).toBe(40)
    // Another topic has a budget of its own.
    f.listen('u', decode, undefined, () => undefined)
    expect(await pubsub.topicValidators.get('u')!(relayA, signed('u', author, kib))).toBe(TopicValidatorResult.Accept)
    clock.advance(500)
    expect(await run(relayA, 100)).toBe(30)
    expect(await run(relayB, 100)).toBe(20)
  })

  it('never limits a publisher\'s own messages', async () => {
    const { pubsub, f, decode } = feeds()
    f.listen('t', decode, publisher, () => undefined)
    f.listen('t', decode, undefined, () => undefined)
    const validate = pubsub.topicValidators.get('t')!
    const big = new Uint8Array(MAX_OPEN_GOSSIP_BYTES * 2).fill(1)
    expect(await validate(relayA, signed('t', publisher, big))).toBe(TopicValidatorResult.Accept)
    let accepted = 0
    for (let i = 0; i < OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE * 2; i++) {
      if ((await validate(relayA, signed('t', publisher, new Uint8Array(1024).fill(1)))) === TopicValidatorResult.Accept) accepted++
    }
    expect(accepted).toBe(OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE * 2)
    // The same bytes from anyone else are open gossip, and bounded.
    expect(await validate(relayA, signed('t', author, big))).toBe(TopicValidatorResult.Ignore)
  })
})
