import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { AbortError } from '../../src/errors.js'
import { verifyProof } from '../../src/proof/proof.js'
import type { TopicState } from '../../src/net/topic-protocols.js'
import type { OffenceKind } from '../../src/peers/peer-scorer.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { recordSignedCheckpoint, type SignedCheckpoint, sealCheckpoint } from '../../src/topic/checkpoint-record.js'
import type { Fetcher } from '../../src/topic/fetcher.js'
import type { GossipDecoder, GossipFeeds } from '../../src/topic/gossip-feeds.js'
import { checkpointsTopic } from '../../src/topic/gossip.js'
import { TopicHandle } from '../../src/topic/topic-handle.js'
import type { TopicStateManager, TopicStateManagerEvents } from '../../src/topic/topic-state-manager.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { equalBytes, uint64BE } from '../../src/util/bytes.js'
import { silentLog } from '../../src/util/log.js'
import { Prng } from '../../src/util/prng.js'
import { until } from '../helpers/wait.js'

const TOPIC = 't'

function datas(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, () => prng.bytes(8 + prng.int(24)))
}

/** The peer-state table a handle listens to, driven by hand: no peers, no network. */
class HandStates extends TypedEventEmitter<TopicStateManagerEvents> {
  states(): Map<string, TopicState> {
    return new Map()
  }

  peerIds(): string[] {
    return []
  }

  async refresh(): Promise<void> {}

  /** `peer` reports a state for the topic that carries `record`. */
  report(peer: string, record: Uint8Array): void {
    const state: TopicState = { lowest: 0, head: 0, headHash: new Uint8Array(32), checkpoint: { number: 0, root: new Uint8Array(32) }, record }
    this.safeDispatchEvent('peer:state', { detail: { peer, topic: TOPIC, state } })
  }
}

/** Gossip subscriptions driven by hand: `deliver` runs a message through the listener's decoder, as the validator does. */
class HandFeeds {
  private readonly listeners = new Map<string, { decode: GossipDecoder<unknown>; onMessage: (value: unknown) => void }>()

  listen<T>(topic: string, decode: GossipDecoder<T>, _publisher: PeerId | undefined, onMessage: (value: T) => void): () => void {
    this.listeners.set(topic, { decode, onMessage: onMessage as (value: unknown) => void })
    return () => this.listeners.delete(topic)
  }

  /** Whether the message passed the decoder (and reached the listener). */
  async deliver(topic: string, data: Uint8Array): Promise<boolean> {
    const listener = this.listeners.get(topic)
    if (listener === undefined) throw new Error(`nobody listens to ${topic}`)
    let value: unknown
    try {
      value = await listener.decode(data)
    } catch {
      return false
    }
    listener.onMessage(value)
    return true
  }
}

interface Setup {
  topics: TopicStore
  /** The topic's publisher; none when a quorum decides. */
  publisher: PrivateKey | undefined
  /** This node's key: the publisher's when `own`. */
  own?: boolean
  feeds?: HandFeeds
}

/** A handle over `topics` trusting `publisher` (if any), with no peers and no network; faults it blames are collected. */
async function handleOver({ topics, publisher, own = false, feeds }: Setup) {
  const states = new HandStates()
  const blamed: { peer: string; kind: OffenceKind }[] = []
  const fetcher = { queueFetch: () => async () => [], hashes: async () => [] } as unknown as Fetcher
  const handle = new TopicHandle(TOPIC, {
    log: silentLog,
    store: topics,
    fetcher,
    states: states as unknown as TopicStateManager,
    pubsub: undefined,
    feeds: feeds as unknown as GossipFeeds | undefined,
    publisher: publisher === undefined ? undefined : peerIdFromPrivateKey(publisher),
    privateKey: own && publisher !== undefined ? publisher : await generateKeyPair('Ed25519'),
    quorum: undefined,
    onPeerFault: (peer, kind) => blamed.push({ peer, kind })
  })
  return { handle, states, blamed }
}

/**
 * Brings what the store held under the handle's trust mode: `items()` does that before it looks at its signal,
 * so with one aborted already it does only that.
 */
async function trustStored(handle: TopicHandle): Promise<void> {
  await expect(handle.items({ signal: AbortSignal.abort() }).next()).rejects.toBeInstanceOf(AbortError)
}

/** A store holding `items`, with a checkpoint recorded (as verified) at `checkpointAt`. */
async function storeOf(items: Uint8Array[], checkpointAt: number): Promise<TopicStore> {
  const topics = new TopicStore(new MemoryStore())
  await topics.appendMany(TOPIC, items.slice(0, checkpointAt + 1))
  await topics.checkpoint(TOPIC)
  if (items.length > checkpointAt + 1) await topics.appendMany(TOPIC, items.slice(checkpointAt + 1))
  return topics
}

/** The publisher's signed checkpoint over its `items`, at its last one. */
async function signedOver(items: Uint8Array[], key: PrivateKey): Promise<SignedCheckpoint> {
  const topics = new TopicStore(new MemoryStore())
  await topics.appendMany(TOPIC, items)
  return (await recordSignedCheckpoint(topics, TOPIC, key))!
}

/** Keeps `record` as the topic's newest signed record, as a node does with one it opened. */
async function keep(topics: TopicStore, record: SignedCheckpoint): Promise<void> {
  await topics.putCheckpointRecord(TOPIC, { number: record.checkpoint.number, envelope: record.envelope })
}

describe('TopicHandle: stored items under a publisher', () => {
  const honest = datas(1, 15)

  /**
   * A store of `items` recorded as verified up to 9, and the publisher's signed record over the honest items 0 to
   * 9 kept: whatever it holds past 9 the publisher does not prove.
   */
  async function provenTo9(items: Uint8Array[] = honest): Promise<{ publisher: PrivateKey; topics: TopicStore }> {
    const publisher = await generateKeyPair('Ed25519')
    const topics = await storeOf(items, 9)
    await keep(topics, await signedOver(honest.slice(0, 10), publisher))
    return { publisher, topics }
  }

  it("keeps items up to the verified checkpoint the publisher's kept record signs, and drops those past it", async () => {
    const { publisher, topics } = await provenTo9()
    const { handle } = await handleOver({ topics, publisher })
    await trustStored(handle)
    expect(await topics.head(TOPIC)).toBe(9)
    expect(handle.checkpointReceived?.number).toBe(9)
    await handle.close()
  })

  it("drops every item when the store's verified checkpoint has another root than the publisher's record", async () => {
    // What a quorum of liars brought in before the publisher was configured, under their own checkpoint.
    const forged = datas(666, 10)
    const { publisher, topics } = await provenTo9(forged)
    const { handle } = await handleOver({ topics, publisher })
    await trustStored(handle)
    expect(await topics.head(TOPIC)).toBe(-1)
    expect(handle.checkpointReceived?.number).toBe(9)
    await handle.close()
  })

  it('reports through head, state, root and prove only the items the publisher proves, before any sync', async () => {
    const publisher = await generateKeyPair('Ed25519')
    const record = await signedOver(honest.slice(0, 10), publisher)
    const reads: Record<string, (handle: TopicHandle) => Promise<unknown>> = {
      head: (handle) => handle.head(),
      state: async (handle) => (await handle.state())?.head,
      root: async (handle) => equalBytes(await handle.root(), record.checkpoint.root),
      // Item 12 is past the signed checkpoint: the current root proves it absent.
      prove: async (handle) => {
        const proof = await handle.prove(12)
        return verifyProof(await handle.root(), uint64BE(12), proof)
      }
    }
    const expected: Record<string, unknown> = { head: 9, state: 9, root: true, prove: null }
    for (const [name, read] of Object.entries(reads)) {
      // Proven up to 9; 10 to 14 past the publisher's last signed checkpoint. A fresh handle for each read, with
      // no follow, syncOnce or items: the read itself brings the store under the publisher's trust first.
      const topics = await storeOf(honest, 9)
      await keep(topics, record)
      const { handle } = await handleOver({ topics, publisher })
      expect({ name, value: await read(handle) }).toEqual({ name, value: expected[name] })
      expect(await topics.head(TOPIC)).toBe(9)
      await handle.close()
    }
  })

  it('answers no read once closed before or during that step, where the step would have dropped items', async () => {
    const { publisher, topics } = await provenTo9()
    const { handle } = await handleOver({ topics, publisher })
    // Closed while the step runs: the read waiting on it rejects, and close() still resolves.
    const early = handle.head()
    await handle.close()
    await expect(early).rejects.toThrow(AbortError)
    // A closed handle cuts nothing, and had answered head 14 (items 10 to 14 unproven).
    await expect(handle.head()).rejects.toThrow(AbortError)
    await expect(handle.prove(12)).rejects.toThrow(AbortError)
    expect(await topics.head(TOPIC)).toBe(14)
  })

  it('still answers reads once closed when the step had nothing to drop', async () => {
    const { publisher, topics } = await provenTo9(honest.slice(0, 10))
    const { handle } = await handleOver({ topics, publisher })
    await handle.close()
    expect(await handle.head()).toBe(9)
  })

  it('answers nothing while the store fails that step, and takes it again at the next call', async () => {
    const { publisher, topics } = await provenTo9()
    const read = topics.getCheckpointRecord.bind(topics)
    let failures = 1
    topics.getCheckpointRecord = (...args) => (failures-- > 0 ? Promise.reject(new Error('disk on fire')) : read(...args))
    const { handle } = await handleOver({ topics, publisher })
    // It had been logged and passed over: head 14, and items 10 to 14 yielded.
    await expect(handle.head()).rejects.toThrow('disk on fire')
    expect(await handle.head()).toBe(9)
    await handle.close()
  })

  it('appends a published item after that step, so the step cannot cut it', async () => {
    const { publisher, topics } = await provenTo9()
    const { handle } = await handleOver({ topics, publisher })
    const { n } = await handle.publish(Uint8Array.of(7))
    expect(n).toBe(10)
    expect(await handle.head()).toBe(10)
    await handle.close()
  })

  it('drops every item when the kept record was signed by another key than the publisher', async () => {
    const publisher = await generateKeyPair('Ed25519')
    const topics = await storeOf(honest.slice(0, 10), 9)
    await keep(topics, await signedOver(honest.slice(0, 10), await generateKeyPair('Ed25519')))
    const { handle } = await handleOver({ topics, publisher })
    await trustStored(handle)
    expect(await topics.head(TOPIC)).toBe(-1)
    expect(handle.checkpointReceived).toBeUndefined()
    await handle.close()
  })

  it('on the publisher itself, keeps its own items past its last checkpoint', async () => {
    const { publisher, topics } = await provenTo9()
    const { handle } = await handleOver({ topics, publisher, own: true })
    await trustStored(handle)
    expect(await topics.head(TOPIC)).toBe(14)
    expect(handle.checkpointReceived?.number).toBe(9)
    await handle.close()
  })

  it('takes no record and writes nothing once closed while it was reading the store', async () => {
    const { publisher, topics } = await provenTo9()
    const { handle } = await handleOver({ topics, publisher })
    const trusting = trustStored(handle)
    await handle.close()
    await trusting
    expect(await topics.head(TOPIC)).toBe(14)
    expect(handle.checkpointReceived).toBeUndefined()
  })
})

describe("TopicHandle: checkpoint records from peers' states", () => {
  const items = datas(2, 30)

  it('takes each newer record the publisher signed, never an older one nor a second one for the same number', async () => {
    const publisher = await generateKeyPair('Ed25519')
    const topics = new TopicStore(new MemoryStore())
    const { handle, states } = await handleOver({ topics, publisher })
    const received: number[] = []
    handle.addEventListener('checkpoint', (e) => {
      if (e.detail.status === 'received') received.push(e.detail.checkpoint.number)
    })
    const at20 = await signedOver(items.slice(0, 21), publisher)
    states.report('a', at20.envelope)
    await until(() => received.length === 1, 'the first record', 2_000)
    // Records are opened in the order they come: the newest, last, is taken after the others were refused.
    states.report('b', (await signedOver(items.slice(0, 11), publisher)).envelope)
    const later = { ...at20.checkpoint, head: 25, headHash: keccak256(items[25]!) }
    states.report('c', (await sealCheckpoint(TOPIC, later, publisher)).envelope)
    states.report('d', (await signedOver(items, publisher)).envelope)
    await until(() => handle.checkpointReceived?.number === 29, 'the newest record', 2_000)
    expect(received).toEqual([20, 29])
    expect((await topics.getCheckpointRecord(TOPIC))?.number).toBe(29)
    await handle.close()
  })

  it('ignores a record signed by another key, without blaming its relay, and blames a peer whose record is no record', async () => {
    const publisher = await generateKeyPair('Ed25519')
    const topics = new TopicStore(new MemoryStore())
    const { handle, states, blamed } = await handleOver({ topics, publisher })
    states.report('relay', (await signedOver(items, await generateKeyPair('Ed25519'))).envelope)
    states.report('liar', Uint8Array.of(0x0a, 0x03, 1, 2, 3))
    await until(() => blamed.length > 0, 'the peer with a garbage record to be blamed', 2_000)
    // The stranger's record was opened first: had it been taken, it would be here by now.
    expect(blamed).toEqual([{ peer: 'liar', kind: 'bad-data' }])
    expect(handle.checkpointReceived).toBeUndefined()
    expect(await topics.getCheckpointRecord(TOPIC)).toBeNull()
    await handle.close()
  })
})

describe('TopicHandle: checkpoint records from gossip', () => {
  it("lets through only records the publisher signed for this topic", async () => {
    const publisher = await generateKeyPair('Ed25519')
    const feeds = new HandFeeds()
    const topics = new TopicStore(new MemoryStore())
    const { handle } = await handleOver({ topics, publisher, feeds })
    const following = new AbortController()
    const follow = handle.follow({ signal: following.signal })
    const cp = { number: 5, root: new Uint8Array(32).fill(1), head: 5, headHash: new Uint8Array(32).fill(2) }
    const forged = await sealCheckpoint(TOPIC, cp, await generateKeyPair('Ed25519'))
    const elsewhere = await sealCheckpoint('other', cp, publisher)
    expect(await feeds.deliver(checkpointsTopic(TOPIC), forged.envelope)).toBe(false)
    expect(await feeds.deliver(checkpointsTopic(TOPIC), elsewhere.envelope)).toBe(false)
    expect(handle.checkpointReceived).toBeUndefined()
    expect(await feeds.deliver(checkpointsTopic(TOPIC), (await sealCheckpoint(TOPIC, cp, publisher)).envelope)).toBe(true)
    expect(handle.checkpointReceived).toEqual(cp)
    following.abort()
    await follow
    await handle.close()
  })

  it('without a publisher, lets any signed record through to be relayed, but takes none', async () => {
    const feeds = new HandFeeds()
    const topics = new TopicStore(new MemoryStore())
    const { handle } = await handleOver({ topics, publisher: undefined, feeds })
    const received: number[] = []
    handle.addEventListener('checkpoint', (e) => received.push(e.detail.checkpoint.number))
    const following = new AbortController()
    const follow = handle.follow({ signal: following.signal })
    const cp = { number: 5, root: new Uint8Array(32).fill(1), head: 5, headHash: new Uint8Array(32).fill(2) }
    expect(await feeds.deliver(checkpointsTopic(TOPIC), (await sealCheckpoint(TOPIC, cp, await generateKeyPair('Ed25519'))).envelope)).toBe(true)
    expect(handle.checkpointReceived).toBeUndefined()
    expect(received).toEqual([])
    following.abort()
    await follow
    await handle.close()
    expect(await topics.getCheckpointRecord(TOPIC)).toBeNull()
  })
})
