/**
 * A peer that serves valid items, but crawls: every byte it sends crosses a link of 40 KB/s, just above the
 * downloader's floor of 32 KiB/s, so its replies are never cut as stalled. Dialled first, it is the first peer
 * the joiner asks. An outside tester's crawling server had made `dsfg sync --topic` give up after `--wait`
 * beside an honest publisher: the batch it held at the head of the window kept every batch above it waiting.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, it } from 'vitest'
import { createDsfgNode } from '../../src/node/create-node.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { recordSignedCheckpoint } from '../../src/topic/checkpoint-record.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { Prng } from '../../src/util/prng.js'
import { BlameLog } from '../helpers/blame.js'
import { linkTo } from '../helpers/link-emulator.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'crawl'
/** 4.9 MB of items: two minutes through the crawling link, a few seconds through the honest one. */
const ITEMS = 1200
const ITEM_BYTES = 4096
/** Replies at 40 KB/s, 25 ms each way. */
const CRAWL = { up: { delayMs: 25 }, down: { delayMs: 25, bytesPerSecond: 40_000 } }
/**
 * Replies at 2 MB/s: the honest peer is still downloading when the crawler has sent its first batch (16 items),
 * so the crawler is given a batch sized to a whole reply (256 items, 1 MiB: 26 s at its rate).
 */
const HONEST = { up: { delayMs: 25 }, down: { delayMs: 25, bytesPerSecond: 2_000_000 } }
/** The sync's bound: a small part of the minute the crawler alone would take. */
const SYNC_TIMEOUT_MS = 15_000

describe('a topic synced beside a peer that crawls', () => {
  it('completes from the honest peer well before the crawler could answer, every item proven, nobody blamed', { timeout: SYNC_TIMEOUT_MS + 15_000 }, async ({ expect, onTestFinished }) => {
    const prng = new Prng(31)
    const items = Array.from({ length: ITEMS }, () => prng.bytes(ITEM_BYTES))
    const publisher = await generateKeyPair('Ed25519')
    // Two servers holding the same items and the same signed record (Ed25519 signs deterministically).
    const servers = await Promise.all(
      [0, 1].map(async () => {
        const store = new MemoryStore()
        await new TopicStore(store).appendMany(TOPIC, items)
        const record = (await recordSignedCheckpoint(new TopicStore(store), TOPIC, publisher))!
        const node = await createDsfgNode({ store, topics: [{ name: TOPIC, publisher: record.signer, checkpointSync: false }] })
        onTestFinished(() => node.stop())
        return { node, record }
      })
    )
    const [crawler, honest] = servers as [(typeof servers)[0], (typeof servers)[0]]
    const through = await linkTo(crawler.node.getMultiaddrs()[0]!.toString(), CRAWL)
    onTestFinished(() => through.link.close())

    const client = await createDsfgNode({ topics: [{ name: TOPIC, publisher: honest.record.signer, checkpointSync: false }] })
    onTestFinished(() => client.stop())
    const handle = client.services.dsfg.topic(TOPIC)
    const blame = new BlameLog()
    handle.addEventListener('peer:penalised', blame.listener)
    await client.dial(multiaddr(through.addr))
    await until(() => handle.peerStates().size === 1 && handle.checkpointReceived !== undefined, "the crawler's state and checkpoint", 10_000)
    const honestLink = await linkTo(honest.node.getMultiaddrs()[0]!.toString(), HONEST)
    onTestFinished(() => honestLink.link.close())
    await client.dial(multiaddr(honestLink.addr))
    await until(() => handle.peerStates().size === 2, "the honest peer's state", 10_000)

    const started = performance.now()
    const head = await handle.syncOnce({ signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) })
    const seconds = (performance.now() - started) / 1000
    console.log(`synced ${ITEMS} items in ${seconds.toFixed(1)} s beside a crawler that sent ${through.link.carried().down} bytes`)
    expect(head).toBe(ITEMS - 1)
    expect(await handle.root()).toEqual(honest.record.checkpoint.root)
    const stored = await client.services.dsfg.topicStore.getContents(TOPIC, 0, ITEMS)
    expect(stored.every((item, n) => item.n === n && Buffer.from(item.data).equals(items[n]!))).toBe(true)
    // The crawler was asked (it was the first peer), and was not blamed for being slow.
    expect(through.link.carried().up).toBeGreaterThan(0)
    expect(blame.reasons.size).toBe(0)
  })
})
