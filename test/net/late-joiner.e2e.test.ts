import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { sealCheckpoint } from '../../src/topic/checkpoint-record.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Prng } from '../../src/util/prng.js'
import { type AdversaryInit, createAdversary } from '../helpers/adversary.js'
import { createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { ignoreAbort, until } from '../helpers/wait.js'

const TOPIC = 'ledger'
const COUNT = 3_000

describe('a joiner that comes after the publisher\'s last announcement', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.allSettled(running.splice(0).map((n) => n.stop()))
  })

  async function node(): Promise<DsfgNode> {
    const n = await createDsfgNode({ store: new MemoryStore() })
    running.push(n)
    return n
  }

  it('checkpoint-syncs from a relay alone: the publisher\'s signed record comes in the relay\'s status reply', async () => {
    const prng = new Prng(5)
    const datas = Array.from({ length: COUNT }, () => prng.bytes(20 + prng.int(60)))
    const publisher = await node()
    const published = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    await publisher.services.dsfg.topicStore.appendMany(TOPIC, datas)
    // One announcement, before anyone listens: gossip carries it to nobody.
    await published.checkpoint()

    const relay = await node()
    const relayed = relay.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    const following = new AbortController()
    running.push({ stop: () => following.abort() })
    relayed.follow({ signal: following.signal }).catch(ignoreAbort)
    await relay.dial(publisher.getMultiaddrs()[0]!)
    await until(async () => (await relayed.head()) === COUNT - 1, 'the relay to catch up from the record in the status reply', 20_000)
    // The publisher leaves for good: the joiner can learn its checkpoint only from the relay.
    await publisher.stop()

    const joiner = await node()
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    const steps: string[] = []
    topic.events.addEventListener('trie:adopted', (e) => steps.push(`adopted ${e.detail.number}`))
    topic.addEventListener('checkpoint', (e) => steps.push(`${e.detail.status} ${e.detail.checkpoint.number}`))
    topic.follow({ signal: following.signal }).catch(ignoreAbort)
    await joiner.dial(relay.getMultiaddrs()[0]!)
    await until(async () => (await topic.head()) === COUNT - 1, 'the joiner to catch up from the relay', 20_000)
    expect(steps).toContain(`received ${COUNT - 1}`)
    // A checkpoint sync: the topic trie at the signed root, adopted, not a download of every item.
    expect(steps).toContain(`adopted ${COUNT - 1}`)
    const stored = await joiner.services.dsfg.topicStore.getContents(TOPIC, 0, COUNT)
    expect(stored.map((i) => i.data)).toEqual(datas)
    expect(topic.checkpointReceived?.number).toBe(COUNT - 1)
  }, 60_000)

  it('blames a peer whose status hands out bytes that are no valid record, and ignores a record signed by another key', async () => {
    const publisher = await node()
    const stranger = await generateKeyPair('Ed25519')
    const cp = { number: 5, root: new Uint8Array(32).fill(1), head: 5, headHash: new Uint8Array(32).fill(2) }
    const foreign = (await sealCheckpoint(TOPIC, cp, stranger)).envelope
    const garbage = Uint8Array.of(0x0a, 0x03, 1, 2, 3)
    const withRecord = (record: Uint8Array): AdversaryInit => ({
      behaviour: {
        status: {
          state: () => ({ lowest: 0, head: 5, headHash: new Uint8Array(32), checkpoint: { number: 0, root: new Uint8Array(32) }, record })
        }
      }
    })
    const bad = await createAdversary(withRecord(garbage))
    const other = await createAdversary(withRecord(foreign))
    running.push(bad, other)
    const joiner = await node()
    const topic = joiner.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    const blamed: string[] = []
    topic.addEventListener('peer:penalised', (e) => blamed.push(e.detail.peer))
    const following = new AbortController()
    running.push({ stop: () => following.abort() })
    topic.follow({ signal: following.signal }).catch(ignoreAbort)
    await joiner.dial(bad.node.getMultiaddrs()[0]!)
    await joiner.dial(other.node.getMultiaddrs()[0]!)
    await until(() => blamed.includes(bad.node.peerId.toString()), 'the peer with a garbage record to be blamed', 10_000)
    await until(() => topic.peerStates().has(other.node.peerId.toString()), "the other peer's state", 10_000)
    expect(blamed).not.toContain(other.node.peerId.toString())
    expect(topic.checkpointReceived).toBeUndefined()
  }, 30_000)
})

