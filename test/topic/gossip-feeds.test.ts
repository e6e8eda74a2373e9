import { generateKeyPair } from '@libp2p/crypto/keys'
import { type GossipSub, type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { GossipFeeds } from '../../src/topic/gossip-feeds.js'

/** The part of gossipsub GossipFeeds uses, recording what it is asked to do. */
class FakePubsub extends EventTarget {
  readonly topicValidators = new Map<string, (peer: PeerId, message: Message) => Promise<TopicValidatorResult>>()
  readonly subscribed = new Set<string>()
  stopped = false

  subscribe(topic: string): void {
    this.subscribed.add(topic)
  }

  unsubscribe(topic: string): void {
    if (this.stopped) throw new Error('Pubsub is not started')
    this.subscribed.delete(topic)
  }

  /**
   * Validates like gossipsub, then delivers an accepted message to listeners; returns the verdict once the
   * listeners had their (asynchronous) turn.
   */
  async deliver(message: Message): Promise<TopicValidatorResult> {
    const from = message.type === 'signed' ? message.from : (null as unknown as PeerId)
    const verdict = (await this.topicValidators.get(message.topic)?.(from, message)) ?? TopicValidatorResult.Accept
    if (verdict === TopicValidatorResult.Accept) this.dispatchEvent(new CustomEvent('message', { detail: message }))
    await new Promise((resolve) => setImmediate(resolve))
    return verdict
  }
}

async function peer(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function signed(topic: string, from: PeerId, data: Uint8Array): Message {
  return { type: 'signed', topic, from, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey! } as Message
}

/** A well-formed message is one non-empty byte string. */
const decode = (data: Uint8Array): Uint8Array => {
  if (data.length === 0) throw new Error('empty')
  return data
}

describe('GossipFeeds', () => {
  it('one validator and subscription per topic, accepting what some listener wants; each listener gets its own publisher\'s', async () => {
    const [alice, bob, mallory] = [await peer(), await peer(), await peer()]
    const pubsub = new FakePubsub()
    const feeds = new GossipFeeds(pubsub as unknown as GossipSub)
    const got: string[] = []
    const releaseA = feeds.listen('t', decode, alice, (_v, m) => got.push(`a:${m.data[0]}`))
    const releaseB = feeds.listen('t', decode, bob, (_v, m) => got.push(`b:${m.data[0]}`))
    expect([...pubsub.subscribed]).toEqual(['t'])

    expect(await pubsub.deliver(signed('t', alice, Uint8Array.of(1)))).toBe(TopicValidatorResult.Accept)
    expect(await pubsub.deliver(signed('t', bob, Uint8Array.of(2)))).toBe(TopicValidatorResult.Accept)
    expect(await pubsub.deliver(signed('t', mallory, Uint8Array.of(3)))).toBe(TopicValidatorResult.Reject)
    expect(await pubsub.deliver(signed('t', alice, new Uint8Array()))).toBe(TopicValidatorResult.Reject)
    expect(got).toEqual(['a:1', 'b:2'])

    // Bob's listener leaving neither unsubscribes Alice's nor lets Bob's messages through any more.
    releaseB()
    releaseB()
    expect([...pubsub.subscribed]).toEqual(['t'])
    expect(await pubsub.deliver(signed('t', bob, Uint8Array.of(4)))).toBe(TopicValidatorResult.Reject)
    releaseA()
    expect(pubsub.subscribed.size).toBe(0)
    expect(pubsub.topicValidators.size).toBe(0)
  })

  it('an asynchronous decoder decides for its own listener, which gets the decoded value', async () => {
    const [alice, mallory] = [await peer(), await peer()]
    const pubsub = new FakePubsub()
    const feeds = new GossipFeeds(pubsub as unknown as GossipSub)
    const got: number[] = []
    // Accepts only data whose first byte is even, after a turn of the event loop (as a signature check takes).
    const evenOnly = async (data: Uint8Array): Promise<number> => {
      await new Promise((resolve) => setImmediate(resolve))
      if (data[0]! % 2 !== 0) throw new Error('odd')
      return data[0]! * 10
    }
    feeds.listen('t', evenOnly, undefined, (value) => got.push(value))
    expect(await pubsub.deliver(signed('t', mallory, Uint8Array.of(4)))).toBe(TopicValidatorResult.Accept)
    expect(await pubsub.deliver(signed('t', alice, Uint8Array.of(3)))).toBe(TopicValidatorResult.Reject)
    expect(got).toEqual([40])
  })

  it('a listener without a publisher takes any well-formed message; a throwing listener does not stop the others', async () => {
    const [alice, mallory] = [await peer(), await peer()]
    const pubsub = new FakePubsub()
    const feeds = new GossipFeeds(pubsub as unknown as GossipSub)
    const got: string[] = []
    feeds.listen('t', decode, undefined, () => {
      throw new Error('listener bug')
    })
    const release = feeds.listen('t', decode, undefined, (_v, m) => got.push(`any:${m.data[0]}`))
    feeds.listen('t', decode, alice, (_v, m) => got.push(`a:${m.data[0]}`))
    expect(await pubsub.deliver(signed('t', mallory, Uint8Array.of(5)))).toBe(TopicValidatorResult.Accept)
    expect(got).toEqual(['any:5'])
    // Releasing after the node stopped (gossipsub throws then) is quiet.
    pubsub.stopped = true
    expect(() => release()).not.toThrow()
  })
})
