import type { Libp2p, Stream } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_BUSY_PEER_BACKOFF_MS, MAX_FRAME_BYTES } from '../../src/constants.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { penaltyOf } from '../helpers/blame.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { budgetedServer, openSlowRead } from './half-open-attack.js'

const TOPIC = 'big'

/** 64 KiB items: a full contents request (amount 256) is answered with a reply of about 2 MiB. */
const ITEM_BYTES = 64 * 1024
const COUNT = 96

/**
 * The client's share of the server's reply budget: two full replies. The test fills it with two contents
 * requests of the client's own that it does not read (a slow part of the same application, or the client's own
 * earlier streams), so the syncer's requests are answered RATE_LIMITED until the test gives those streams up.
 * (Other peers' unread replies no longer refuse a client: it takes their room, see slow-reader.e2e.)
 */
const SLOW_READS = 2
const PER_PEER = SLOW_READS * MAX_FRAME_BYTES
const BUDGET = 8 * PER_PEER
/** How long the share stays full once the client was refused: the write deadline would free it after this. */
const HOLD_MS = 3_000
/**
 * How soon after the share empties a refused client must have finished: its next request comes within the busy
 * cap (4 s), and the sync itself takes about a second more. Before, neither syncer had finished 45 s after.
 */
const RESUME_MS = MAX_BUSY_PEER_BACKOFF_MS + 3_000
/**
 * Rounds of the trie sync's refusals: the share is filled again as soon as it empties, so the client is refused
 * for about 16 s. Taken for silence, its probes went 1, 2, 4, 8 and 16 s apart: the first after the refusals
 * came 14 s after them.
 */
const TRIE_ROUNDS = 5

describe('a client refused for want of reply budget resumes once it has room', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  /** A server holding `COUNT` items of `TOPIC` (and their trie) with a small reply budget. */
  async function budgeted(): Promise<{ server: DsfgNode; root: Uint8Array }> {
    const server = await budgetedServer({
      topic: TOPIC,
      count: COUNT,
      itemBytes: ITEM_BYTES,
      seed: 14,
      deadlineMs: 60_000,
      budget: BUDGET,
      perPeer: PER_PEER
    })
    running.push(server)
    return { server, root: await server.services.dsfg.topicStore.root(TOPIC) }
  }

  /** Fills `client`'s share with unread replies (each of at least 31 items); resolves once the server holds them. */
  async function fillShare(server: DsfgNode, client: Libp2p): Promise<Stream[]> {
    const connection = client.getConnections(server.peerId)[0]!
    const streams = await Promise.all(Array.from({ length: SLOW_READS }, (_, j) => openSlowRead(connection, TOPIC, j * 8)))
    await until(
      () => server.services.dsfg.replyStats().inFlight > PER_PEER - MAX_FRAME_BYTES / 2,
      'the unread replies to fill the client\'s share'
    )
    return streams
  }

  /** Waits until the client has been refused, holds the share `HOLD_MS` more, then empties it; returns when. */
  async function refusedThenEmptied(server: DsfgNode, streams: Stream[], refusedBefore: number): Promise<number> {
    await until(() => server.services.dsfg.replyStats().refused > refusedBefore, 'the honest client to be refused', HOLD_MS)
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
    for (const stream of streams) stream.abort(new Error('given up by the test'))
    await until(() => server.services.dsfg.replyStats().inFlight === 0, 'the unread replies to be dropped', 5_000, 5)
    return Date.now()
  }

  it('the topic downloader: done within seconds of the budget emptying, and nobody blames the server', async () => {
    const { server } = await budgeted()
    const node = await createDsfgNode({ store: new MemoryStore() })
    running.push(node)
    await connect(node, server)
    // Filled before the topic is opened, so the only requests for it are the unread ones.
    const streams = await fillShare(server, node)
    const refusedBefore = server.services.dsfg.replyStats().refused
    const topic = node.services.dsfg.topic({ name: TOPIC, checkpointSync: false })
    const penalised: string[] = []
    topic.addEventListener('peer:penalised', (e) => penalised.push(e.detail.peer))
    const following = topic.follow({ signal: AbortSignal.timeout(25_000) })
    following.catch(() => undefined)
    const emptiedAt = await refusedThenEmptied(server, streams, refusedBefore)
    expect(await topic.head()).toBeLessThan(COUNT - 1)

    // Five refusals in a row used to fail the download, which then waited for the next status round (30 s).
    await until(async () => (await topic.head()) === COUNT - 1, 'the refused joiner to catch up', RESUME_MS)
    console.log(`topic download complete ${Date.now() - emptiedAt} ms after the budget emptied`)
    // RATE_LIMITED means "later", never "liar".
    expect(penalised).toEqual([])
    expect(await penaltyOf(node, server.peerId)).toBe(0)
  }, 30_000)

  it('the trie sync: done within seconds of the budget emptying, and nobody blames the server', async () => {
    const { server, root } = await budgeted()
    const client = await createDsfgNode({ store: new MemoryStore() })
    running.push(client)
    await connect(client, server)
    const streams = await fillShare(server, client)
    const refusedBefore = server.services.dsfg.replyStats().refused
    const penalised: string[] = []
    let doneAt = 0
    const sync = client.services.dsfg.syncRoot(root, { onPenalty: (p) => penalised.push(p.peer), signal: AbortSignal.timeout(25_000) })
    void sync.then(() => {
      doneAt = Date.now()
    }, () => undefined)
    let emptiedAt = await refusedThenEmptied(server, streams, refusedBefore)
    for (let round = 1; round < TRIE_ROUNDS && doneAt === 0; round++) {
      const more = await fillShare(server, client)
      emptiedAt = await refusedThenEmptied(server, more, server.services.dsfg.replyStats().refused)
    }
    expect(doneAt).toBe(0)

    await until(() => doneAt > 0, 'the refused trie sync to complete', RESUME_MS)
    await sync
    console.log(`trie sync complete ${doneAt - emptiedAt} ms after the budget emptied`)
    expect(penalised).toEqual([])
    expect(await penaltyOf(client, server.peerId)).toBe(0)
  }, 45_000)
})
