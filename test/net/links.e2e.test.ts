/**
 * Short versions of the `bench:links` scenarios (issue 13): each syncer completes, verified, through emulated
 * links with real delays and rate caps. The figures belong to `npm run bench:links`; here the vitest timeout is
 * the only bound on time.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { describe, it, type TestContext } from 'vitest'
import { accountEntries } from '../../src/fixtures/generate.js'
import type { Item } from '../../src/fsm/types.js'
import { createDsfgNode, type DsfgLibp2p } from '../../src/node/create-node.js'
import type { TopicConfig } from '../../src/service/dsfg-service.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { verifyTrie } from '../../src/trie/walk.js'
import { fromHex } from '../../src/util/hex.js'
import { type Link, linkTo } from '../helpers/link-emulator.js'
import { LINK_SCENARIOS, type LinkScenario } from '../helpers/link-scenarios.js'
import { signedItemsSource } from '../helpers/topic-data.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'links'
/**
 * About 2,650 nodes, 324 kB. The longest run, over one 300 ms link, takes about 14 s: a request costs two round
 * trips there, and the syncer's request sizes start at one node (README, "Over emulated links").
 */
const TRIE_KEYS = 2000
/** 300 KiB of items: under the checkpoint-sync threshold, so every item goes through the numbered-batch downloader. */
const ITEMS = 300
const ITEM_BYTES = 1024
const SYNC_TIMEOUT_MS = 20_000

/** A copy of `source` for one server (a node may write to its store, so servers do not share one). */
async function copyStore(source: MemoryStore): Promise<MemoryStore> {
  const copy = new MemoryStore()
  const keys = [...source.keys()].map((key) => fromHex(key))
  const values = await source.getMany(keys)
  await copy.batch(keys.map((key, i) => ({ type: 'put' as const, key, value: values[i]! })))
  return copy
}

describe('sync over emulated links', async () => {
  const trieSource = new MemoryStore()
  const trieEntries = accountEntries(5, TRIE_KEYS)
  const { root } = await importSorted(trieSource, trieEntries)
  /** What any reply carrying the trie must hold: its values (sent as nodes, or as subtries' leaves). */
  const valueBytes = trieEntries.reduce((sum, [, value]) => sum + value.length, 0)

  const { store: topicSource, items, record, config: topic } = await signedItemsSource(TOPIC, ITEMS, ITEM_BYTES, 13)

  /**
   * One server per link of `scenario`, each on a copy of `source`, and a client that dialled them all through
   * their links; all of it stops when the calling test ends.
   */
  async function network(
    scenario: LinkScenario,
    source: MemoryStore,
    topics: TopicConfig[],
    onTestFinished: TestContext['onTestFinished']
  ): Promise<{ client: DsfgLibp2p; links: Link[] }> {
    const addrs: string[] = []
    const links: Link[] = []
    for (const options of scenario.links) {
      const server = await createDsfgNode({ store: await copyStore(source), topics })
      onTestFinished(() => server.stop())
      const through = await linkTo(server.getMultiaddrs()[0]!.toString(), options)
      onTestFinished(() => through.link.close())
      addrs.push(through.addr)
      links.push(through.link)
    }
    const client = await createDsfgNode({ topics })
    onTestFinished(() => client.stop())
    for (const addr of addrs) await client.dial(multiaddr(addr))
    // Identify crosses the links too: wait until every server is a DSFG peer before starting.
    await until(() => client.services.dsfg.nodePeers().length === addrs.length, 'every server to be a DSFG peer', SYNC_TIMEOUT_MS)
    return { client, links }
  }

  /** Bytes the links carried from the servers to the client. */
  const carriedDown = (links: Link[]): number => links.reduce((sum, l) => sum + l.carried().down, 0)

  // Concurrently: each run spends its time waiting on its links' delays, not on the CPU.
  for (const scenario of LINK_SCENARIOS) {
    it.concurrent(`trie sync, ${scenario.name}: complete and verified`, async ({ expect, onTestFinished }) => {
      const { client, links } = await network(scenario, trieSource, [], onTestFinished)
      const result = await client.services.dsfg.syncRoot(root, { signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) })
      const check = await verifyTrie(client.services.dsfg.store, root)
      expect(check.complete).toBe(true)
      expect(result.nodes).toBe(check.nodes)
      // The trie came through the links, not around them.
      expect(carriedDown(links)).toBeGreaterThan(valueBytes)
    })

    it.concurrent(`topic catch-up, ${scenario.name}: every item, proven against the signed checkpoint`, async ({ expect, onTestFinished }) => {
      const { client, links } = await network(scenario, topicSource, [topic], onTestFinished)
      const handle = client.services.dsfg.topic(TOPIC)
      await until(
        () => handle.peerStates().size === scenario.links.length && handle.checkpointReceived !== undefined,
        'every server to report its state and the checkpoint',
        SYNC_TIMEOUT_MS
      )
      const head = await handle.syncOnce({ signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) })
      expect(head).toBe(ITEMS - 1)
      expect(await handle.root()).toEqual(record.checkpoint.root)
      const stored: Item[] = await client.services.dsfg.topicStore.getContents(TOPIC, 0, ITEMS)
      expect(stored.map((i) => i.n)).toEqual(items.map((_, n) => n))
      expect(stored.every((item, n) => Buffer.from(item.data).equals(items[n]!))).toBe(true)
      expect(carriedDown(links)).toBeGreaterThan(ITEMS * ITEM_BYTES)
    })
  }
})
