import type { Libp2p } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_BUSY_PEER_BACKOFF_MS, MAX_FRAME_BYTES } from '../../src/constants.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { penaltyOf } from '../helpers/blame.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { budgetedServer, connectedAttackers, honestJoiner, openSlowRead } from './half-open-attack.js'

const TOPIC = 'big'

/** 64 KiB items: a full contents request (amount 256) is answered with a reply of about 2 MiB. */
const ITEM_BYTES = 64 * 1024
const COUNT = 96

/**
 * The budget scaled down from the defaults (64 MiB, 12 MiB a peer: 5 peer ids and a bit fill it) to 3 peers'
 * shares of two full replies each: 3 slow readers fill it, and what they leave is too little for a contents or
 * nodes reply (whose reservation is `MAX_FRAME_BYTES`), so the honest client is answered RATE_LIMITED.
 */
const SLOW_READS = 2
const PER_PEER = SLOW_READS * MAX_FRAME_BYTES
const ATTACKERS = 3
const BUDGET = ATTACKERS * PER_PEER
/** The server's write deadline: the slow readers' replies are aborted, and the budget empties, after it. */
const DEADLINE_MS = 3_000
/**
 * How soon after the budget empties a refused client must have finished: its next request comes within the busy
 * cap (4 s), and the sync itself takes about a second more. Before, neither syncer had finished 45 s after.
 */
const RESUME_MS = MAX_BUSY_PEER_BACKOFF_MS + 3_000
/**
 * Rounds of the trie sync's attack: the slow readers fill the budget again as soon as it empties, so the client
 * is refused for about 16 s. Taken for silence, its probes went 1, 2, 4, 8 and 16 s apart: the first after the
 * attack came 14 s after it.
 */
const TRIE_ROUNDS = 5

describe('a client refused for want of reply budget resumes once there is room', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  /** A server holding `COUNT` items of `TOPIC` (and their trie) with a small reply budget, and its slow readers. */
  async function attackedServer(): Promise<{ server: DsfgNode; root: Uint8Array; attackers: Libp2p[] }> {
    const server = await budgetedServer({
      topic: TOPIC,
      count: COUNT,
      itemBytes: ITEM_BYTES,
      seed: 14,
      deadlineMs: DEADLINE_MS,
      budget: BUDGET,
      perPeer: PER_PEER
    })
    running.push(server)
    const root = await server.services.dsfg.topicStore.root(TOPIC)
    const attackers = await connectedAttackers(ATTACKERS, server.getMultiaddrs()[0]!)
    running.push(...attackers)
    return { server, root, attackers }
  }

  /** Fills the budget with unread replies (each of at least 31 items); resolves once the server holds them. */
  async function fillBudget(server: DsfgNode, attackers: Libp2p[]): Promise<void> {
    await Promise.all(
      attackers.flatMap((a, i) =>
        Array.from({ length: SLOW_READS }, (_, j) => openSlowRead(a.getConnections(server.peerId)[0]!, TOPIC, (i * SLOW_READS + j) * 8))
      )
    )
    await until(
      () => server.services.dsfg.replyStats().inFlight > BUDGET - MAX_FRAME_BYTES / 2,
      'the slow readers to fill the reply budget'
    )
  }

  /**
   * Waits until the client has been refused, then until the slow readers' replies are dropped at the deadline;
   * returns when the budget emptied.
   */
  async function refusedThenEmptied(server: DsfgNode, refusedBefore: number): Promise<number> {
    await until(() => server.services.dsfg.replyStats().refused > refusedBefore, 'the honest client to be refused', DEADLINE_MS)
    await emptied(server)
    return Date.now()
  }

  async function emptied(server: DsfgNode): Promise<void> {
    await until(() => server.services.dsfg.replyStats().inFlight === 0, 'the slow replies to be dropped', DEADLINE_MS + 5_000, 5)
  }

  it('the topic downloader: done within seconds of the budget emptying, and nobody blames the server', async () => {
    const { server, attackers } = await attackedServer()
    const joiner = await honestJoiner(TOPIC)
    running.push(joiner)
    const penalised: string[] = []
    joiner.topic.addEventListener('peer:penalised', (e) => penalised.push(e.detail.peer))

    await fillBudget(server, attackers)
    const refusedBefore = server.services.dsfg.replyStats().refused
    await connect(joiner.node, server)
    const following = joiner.follow()
    following.catch(() => undefined)
    const emptiedAt = await refusedThenEmptied(server, refusedBefore)
    expect(await joiner.topic.head()).toBeLessThan(COUNT - 1)

    // Five refusals in a row used to fail the download, which then waited for the next status round (30 s).
    await until(async () => (await joiner.topic.head()) === COUNT - 1, 'the refused joiner to catch up', RESUME_MS)
    console.log(`topic download complete ${Date.now() - emptiedAt} ms after the budget emptied`)
    // RATE_LIMITED means "later", never "liar".
    expect(penalised).toEqual([])
    expect(await penaltyOf(joiner.node, server.peerId)).toBe(0)
  }, 30_000)

  it('the trie sync: done within seconds of the budget emptying, and nobody blames the server', async () => {
    const { server, root, attackers } = await attackedServer()
    const client = await createDsfgNode({ store: new MemoryStore() })
    running.push(client)
    await fillBudget(server, attackers)
    const refusedBefore = server.services.dsfg.replyStats().refused
    await connect(client, server)
    const penalised: string[] = []
    let doneAt = 0
    const sync = client.services.dsfg.syncRoot(root, { onPenalty: (p) => penalised.push(p.peer), signal: AbortSignal.timeout(25_000) })
    void sync.then(() => {
      doneAt = Date.now()
    }, () => undefined)
    let emptiedAt = await refusedThenEmptied(server, refusedBefore)
    for (let round = 1; round < TRIE_ROUNDS && doneAt === 0; round++) {
      // The attackers' connections may be gone (cut off for their unread replies): they dial again.
      for (const a of attackers) if (a.getConnections(server.peerId).length === 0) await a.dial(server.getMultiaddrs()[0]!)
      await fillBudget(server, attackers)
      await emptied(server)
      emptiedAt = Date.now()
    }
    expect(doneAt).toBe(0)

    await until(() => doneAt > 0, 'the refused trie sync to complete', RESUME_MS)
    await sync
    console.log(`trie sync complete ${doneAt - emptiedAt} ms after the budget emptied`)
    expect(penalised).toEqual([])
    expect(await penaltyOf(client, server.peerId)).toBe(0)
  }, 45_000)
})
