import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { createDsfgNode, type DsfgLibp2p } from '../../src/node/create-node.js'
import type { BatchOp, KVStore } from '../../src/store/kv-store.js'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { TopicHandle } from '../../src/topic/topic-handle.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { recordNodesRequests } from '../helpers/nodes-recorder.js'
import { storedNodeKeys } from '../helpers/stored-keys.js'
import { storedItems } from '../helpers/topic-data.js'
import { ignoreAbort, until } from '../helpers/wait.js'
import { WrappedStore } from '../helpers/wrapped-store.js'
import { Gate } from '../topic/net-helpers.js'

const TOPIC = 'ledger'

function itemData(count: number, seed: number): Uint8Array[] {
  const prng = new Prng(seed)
  return Array.from({ length: count }, () => prng.bytes(40 + prng.int(120)))
}

/** A publisher with `history` items and a checkpoint, and servers that caught up from it and keep following. */
async function network(history: number, servers: number, running: { stop(): unknown }[]) {
  const publisher = await createDsfgNode({ store: new MemoryStore() })
  running.push(publisher)
  const topic = publisher.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
  await publisher.services.dsfg.topicStore.appendMany(TOPIC, itemData(history, 1))
  await topic.checkpoint()
  const following = new AbortController()
  running.push({ stop: () => following.abort() })
  const serverNodes: DsfgLibp2p[] = []
  for (let i = 0; i < servers; i++) {
    const server = await createDsfgNode({ store: new MemoryStore() })
    running.push(server)
    await server.dial(publisher.getMultiaddrs()[0]!)
    const handle = server.services.dsfg.topic({ name: TOPIC, publisher: publisher.peerId })
    handle.follow({ signal: following.signal }).catch(ignoreAbort)
    serverNodes.push(server)
  }
  // Until the servers follow, checkpoints go nowhere: keep announcing until each has caught up.
  for (const server of serverNodes) {
    await until(async () => {
      await topic.checkpoint()
      return (await server.services.dsfg.topic(TOPIC).head()) === history - 1
    }, 'a server to catch up', 30_000, 100)
  }
  return { publisher, topic, servers: serverNodes }
}

/** Publishes a few live items and a checkpoint every `intervalMs` until stopped; resolves to the items sent. */
function livePublisher(topic: TopicHandle, intervalMs: number) {
  const prng = new Prng(77)
  let stopped = false
  let rounds = 0
  const done = (async () => {
    while (!stopped) {
      for (let i = 0; i < 20; i++) await topic.publish(prng.bytes(40 + prng.int(100)))
      await topic.checkpoint()
      rounds++
      await new Promise((r) => setTimeout(r, intervalMs))
    }
  })()
  return {
    get rounds() {
      return rounds
    },
    async stop() {
      stopped = true
      await done
    }
  }
}

async function joinerNode(store: KVStore, dial: DsfgLibp2p[]): Promise<DsfgLibp2p> {
  const node = await createDsfgNode({ store })
  for (const peer of dial) await node.dial(peer.getMultiaddrs()[0]!)
  return node
}

function joinTopic(node: DsfgLibp2p, publisher: PeerId) {
  const topic = node.services.dsfg.topic({ name: TOPIC, publisher })
  const log = { started: [] as number[], retargets: [] as number[], adopted: [] as number[], checkpoints: 0, trieNodes: 0 }
  topic.events.addEventListener('trie:started', (e) => log.started.push(e.detail.number))
  topic.events.addEventListener('trie:retarget', (e) => log.retargets.push(e.detail.number))
  topic.events.addEventListener('trie:adopted', (e) => log.adopted.push(e.detail.number))
  topic.addEventListener('checkpoint', (e) => {
    if (e.detail.status === 'received') log.checkpoints++
  })
  topic.addEventListener('sync:progress', (e) => {
    if (e.detail.phase === 'trie') log.trieNodes = e.detail.trie!.nodes
  })
  return { topic, log }
}

/** How far the checkpoint moves during the trie sync: past DEFAULT_TRIE_RETARGET_MIN_ITEMS (512). */
const JUMP = 600

/** Whether a store write is one of trie nodes: a batch of 32-byte keys (node hashes) only. */
function writesTrieNodes(ops: BatchOp[]): boolean {
  return ops.length > 0 && ops.every((op) => op.key.length === 32)
}

/** A store that holds every write of trie nodes until `gate` opens. */
class TrieWritesGate extends WrappedStore {
  held = 0
  private readonly gate: Gate

  constructor(inner: KVStore, gate: Gate) {
    super(inner)
    this.gate = gate
  }

  override async batch(ops: BatchOp[]): Promise<void> {
    if (writesTrieNodes(ops)) {
      this.held++
      await this.gate.wait()
    }
    return super.batch(ops)
  }
}

/**
 * A store that takes one write of trie nodes and fails every later one, as if its process died right after the
 * first: a joiner stopped on it holds part of the trie, however much its next replies would have brought (with
 * subtries, a reply or two may hold most of a small trie).
 */
class DiesAfterFirstTrieWrite extends WrappedStore {
  trieWrites = 0

  override async batch(ops: BatchOp[]): Promise<void> {
    if (writesTrieNodes(ops)) {
      if (this.trieWrites > 0) throw new Error('the process died before this write')
      this.trieWrites++
    }
    return super.batch(ops)
  }
}

describe('checkpoint sync of a topic over libp2p', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop()
  })

  it('a late joiner trie-syncs the checkpoint, re-targets when checkpoints move, downloads the rest, follows live, and ends with the publisher\'s items and root', async () => {
    const { publisher, topic: source, servers } = await network(6000, 2, running)
    // The joiner stores no trie node until the checkpoint has moved: its trie sync is then still running when
    // the newer checkpoint arrives, however fast the machine.
    const gate = new Gate()
    const joinerStore = new TrieWritesGate(new MemoryStore(), gate)
    const joiner = await joinerNode(joinerStore, [...servers, publisher])
    running.push(joiner, { stop: () => gate.open() })
    const { topic, log } = joinTopic(joiner, publisher.peerId)
    let completed = false
    topic.addEventListener('sync:complete', () => {
      completed = true
    })
    const controller = new AbortController()
    const following = topic.follow({ signal: controller.signal })
    await until(() => log.started.length > 0 && joinerStore.held > 0, 'the trie sync to be under way', 30_000)
    expect(log.started).toEqual([5999])

    // The checkpoint moves by more than a re-target needs (DEFAULT_TRIE_RETARGET_MIN_ITEMS, 512): the running
    // trie sync must follow it rather than finish the old root.
    for (let i = 0; i < JUMP; i++) await source.publish(new Prng(i).bytes(50))
    const moved = 5999 + JUMP
    await until(
      async () => {
        await source.checkpoint()
        return log.retargets.length > 0
      },
      'the trie sync to re-target',
      30_000,
      100
    )
    expect(log.retargets).toEqual([moved])
    expect(log.adopted).toEqual([])
    gate.open()

    const live = livePublisher(source, 150)
    await until(() => completed && log.checkpoints >= 3 && live.rounds >= 3, 'the joiner to sync while checkpoints move', 60_000)
    await live.stop()
    expect(live.rounds).toBeGreaterThanOrEqual(3)
    const head = await source.head()
    // The last checkpoint covers the last items; the joiner gets there by live gossip or by download.
    await until(async () => (await topic.head()) === head, 'the joiner to reach the publisher head', 30_000)

    expect(log.started).toEqual([5999]) // it took the checkpoint-sync path, once
    expect(log.adopted.length).toBe(1)
    expect(log.adopted[0]).toBeGreaterThanOrEqual(moved)
    expect(log.trieNodes).toBeGreaterThan(0)
    expect(toHex(await topic.root())).toBe(toHex(await source.root()))
    expect(await storedItems(joiner.services.dsfg.topicStore, TOPIC, head)).toEqual(await storedItems(publisher.services.dsfg.topicStore, TOPIC, head))
    controller.abort()
    await following
  }, 120_000)

  it('a joiner restarted mid trie sync resumes from what it stored and finishes', async () => {
    const { publisher, topic: source, servers } = await network(20_000, 1, running)
    // Every nodes request the joiner makes, of the publisher or the server, is recorded under the joiner's peer.
    const recorder = await recordNodesRequests(
      [publisher, ...servers].map((node) => ({ node, store: node.services.dsfg.store }))
    )
    const dir = await mkdtemp(join(tmpdir(), 'dsfg-cp-restart-'))
    running.push({ stop: () => rm(dir, { recursive: true, force: true }) })
    // Checkpoints keep coming, so a restarted joiner learns one again.
    const announce = setInterval(() => void source.checkpoint().catch(() => undefined), 200)
    running.push({ stop: () => clearInterval(announce) })

    // First run: it stores one write of trie nodes, then dies.
    const firstStore = new DiesAfterFirstTrieWrite(await LevelStore.open(dir))
    let joiner = await joinerNode(firstStore, [...servers, publisher])
    const first = joinTopic(joiner, publisher.peerId)
    const controller = new AbortController()
    const following = first.topic.follow({ signal: controller.signal })
    await until(() => firstStore.trieWrites > 0, 'part of the trie to be stored', 60_000, 5)
    controller.abort()
    await following
    await joiner.stop()
    await firstStore.close()
    expect(first.log.adopted).toEqual([])
    const stored = await storedNodeKeys(dir)
    expect(stored.size).toBeGreaterThan(0)

    // Second run on the same store: the stored subtries are not fetched again.
    const store = await LevelStore.open(dir)
    joiner = await joinerNode(store, [...servers, publisher])
    running.push(joiner, { stop: () => store.close() })
    const second = joinTopic(joiner, publisher.peerId)
    const controller2 = new AbortController()
    const following2 = second.topic.follow({ signal: controller2.signal })
    // The adopted trie's items are stored before the loop reports the adoption ('trie:adopted'): wait for both.
    await until(
      async () => (await second.topic.head()) === 19_999 && second.log.adopted.length > 0,
      'the restarted joiner to finish and report the adoption',
      60_000
    )
    expect(second.log.adopted).toEqual([19_999])
    expect(second.log.started).toEqual([19_999])
    // It took the trie path again (its progress may come to nothing to report when the rest is one write) and
    // fetched the rest of the trie, and not one node the first run had stored.
    const requested = recorder.requestedBy(joiner.peerId)
    expect(requested.length).toBeGreaterThan(0)
    expect(requested.filter((hash) => stored.has(hash))).toEqual([])
    expect(toHex(await second.topic.root())).toBe(toHex(await source.root()))
    expect(await storedItems(joiner.services.dsfg.topicStore, TOPIC, 19_999)).toEqual(await storedItems(publisher.services.dsfg.topicStore, TOPIC, 19_999))
    controller2.abort()
    await following2
  }, 120_000)
})
