import { TopicValidatorResult } from '@libp2p/gossipsub'
import { afterEach, describe, expect, it } from 'vitest'
import { createDsfgNode, type DsfgLibp2p } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { type Checkpoint, checkpointsTopic } from '../../src/topic/gossip.js'
import { toHex } from '../../src/util/hex.js'
import { type Adversary, createAdversary } from '../helpers/adversary.js'
import { recordVerdicts, untilVerdict } from '../helpers/blame.js'
import { buildSourceTrie, incompleteNodes, randomEntries, storeOfTries } from '../helpers/trie-source.js'
import { until } from '../helpers/wait.js'
import { Gate } from '../topic/net-helpers.js'

/** Nodes requests answered before the checkpoints are published: the sync is under way, far from done. */
const SERVED_BEFORE_CHECKPOINTS = 3

describe('state sync following gossiped checkpoints', () => {
  const running: { stop(): void | Promise<void> }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('re-targets to the root of a newer publisher checkpoint and ignores a forged one', async () => {
    const entries = randomEntries(77, 1500)
    const a = await buildSourceTrie(entries)
    const b = await buildSourceTrie([...entries, ...randomEntries(78, 20)])
    // The first replies go out at once, then every reply waits until both checkpoints have been dealt with: the
    // re-target then lands mid-sync however fast the machine.
    const gate = new Gate()
    const server: Adversary = await createAdversary({
      store: await storeOfTries(a, b),
      behaviour: { nodes: ({ call }) => (call > SERVED_BEFORE_CHECKPOINTS ? { hold: () => gate.wait() } : 'honest') }
    })
    const publisher: DsfgLibp2p = await createDsfgNode()
    const forger: DsfgLibp2p = await createDsfgNode()
    const store = new MemoryStore()
    const client: DsfgLibp2p = await createDsfgNode({ store })
    running.push(server, publisher, forger, client)
    await client.dial(server.node.getMultiaddrs()[0]!)
    await client.dial(publisher.getMultiaddrs()[0]!)
    await client.dial(forger.getMultiaddrs()[0]!)

    const handle = client.services.dsfg.startStateSync(a.root, {
      maxNodesPerRequest: 16,
      follow: { topic: 'news', publisher: publisher.peerId },
      signal: AbortSignal.timeout(30_000)
    })
    const topic = checkpointsTopic('news')
    const verdicts = recordVerdicts(client.services.pubsub, topic)
    await until(() => publisher.services.pubsub.getSubscribers(topic).some((p) => p.equals(client.peerId)), 'subscription')
    await until(() => forger.services.pubsub.getSubscribers(topic).some((p) => p.equals(client.peerId)), 'subscription')

    // gossipsub may list the client as a subscriber a moment before its stream to it is open, and a publish
    // then reaches nobody: publish until one reaches it.
    const publishToClient = async (node: DsfgLibp2p, cp: Checkpoint): Promise<void> => {
      let reached = 0
      const publish = async (): Promise<boolean> => {
        reached = await node.services.dsfg.publishCheckpoint('news', cp)
        return reached > 0
      }
      await until(publish, 'a publish to reach the client', 5_000, 50)
      expect(reached).toBe(1)
    }
    // A forged checkpoint with a higher number: accepted, it would win over the real one and the sync would fail.
    const bogus = { number: 100, root: new Uint8Array(32).fill(7), head: 100, headHash: new Uint8Array(32) }
    await until(() => server.calls('nodes') >= SERVED_BEFORE_CHECKPOINTS, 'the sync to be under way')
    await publishToClient(forger, bogus) // it did reach the client
    await untilVerdict(verdicts, forger.peerId, TopicValidatorResult.Reject)
    await publishToClient(publisher, { number: 1, root: b.root, head: 1, headHash: new Uint8Array(32) })
    await untilVerdict(verdicts, publisher.peerId, TopicValidatorResult.Accept)
    expect(handle.stats().committed).toBeLessThan(b.nodes.size) // still mid-sync: the replies are held
    gate.open()

    const result = await handle.done
    expect(toHex(result.root)).toBe(toHex(b.root))
    expect(result.retargets).toBe(1)
    for (const k of b.nodes.keys()) expect(store.has(k)).toBe(true)
    expect(await incompleteNodes(store)).toEqual([])
  })
})
