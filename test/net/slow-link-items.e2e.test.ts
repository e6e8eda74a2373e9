/**
 * Issue 13, "requests sized to the link": a topic of large items synced through one thin link. Each reply of
 * a few 64 KiB items takes seconds on the wire there, so a downloader that keeps several reply-sized requests in
 * flight under a fixed deadline (and a server that cuts replies not read within one) never finishes a batch.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { describe, it } from 'vitest'
import { createDsfgNode } from '../../src/node/create-node.js'
import { linkTo } from '../helpers/link-emulator.js'
import { signedItemsSource } from '../helpers/topic-data.js'
import { until } from '../helpers/wait.js'

const TOPIC = 'big'
/** 2.6 MB of items: about 10.5 s at the link's 250 KB/s. */
const ITEMS = 40
const ITEM_BYTES = 64 * 1024
/** 250 KB/s (2 Mbit/s) each way, 100 ms round trip. */
const THIN_LINK = { up: { delayMs: 50, bytesPerSecond: 250_000 }, down: { delayMs: 50, bytesPerSecond: 250_000 } }
const SYNC_TIMEOUT_MS = 28_000

describe('a topic of large items over a 250 KB/s link', async () => {
  const { store: source, items, record, config: topic } = await signedItemsSource(TOPIC, ITEMS, ITEM_BYTES, 13)

  it('completes, every item proven against the signed checkpoint', { timeout: SYNC_TIMEOUT_MS + 5_000 }, async ({ expect, onTestFinished }) => {
    const server = await createDsfgNode({ store: source, topics: [topic] })
    onTestFinished(() => server.stop())
    const through = await linkTo(server.getMultiaddrs()[0]!.toString(), THIN_LINK)
    onTestFinished(() => through.link.close())
    const client = await createDsfgNode({ topics: [topic] })
    onTestFinished(() => client.stop())
    await client.dial(multiaddr(through.addr))
    const handle = client.services.dsfg.topic(TOPIC)
    await until(() => handle.peerStates().size === 1 && handle.checkpointReceived !== undefined, 'the server state and checkpoint', 10_000)
    const started = performance.now()
    const head = await handle.syncOnce({ signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) })
    const seconds = (performance.now() - started) / 1000
    expect(head).toBe(ITEMS - 1)
    expect(await handle.root()).toEqual(record.checkpoint.root)
    const stored = await client.services.dsfg.topicStore.getContents(TOPIC, 0, ITEMS)
    expect(stored.every((item, n) => item.n === n && Buffer.from(item.data).equals(items[n]!))).toBe(true)
    // The link's own time is the bound: 2.6 MB at 250 KB/s, plus the proofs' edge items and round trips.
    console.log(`synced ${ITEMS} items of ${ITEM_BYTES} bytes in ${seconds.toFixed(1)} s`)
    expect(through.link.carried().down).toBeGreaterThan(ITEMS * ITEM_BYTES)
  })
})
