import { afterEach, describe, expect, it } from 'vitest'
import { MAX_FRAME_BYTES, MIN_REPLY_RESERVE_BYTES } from '../../src/constants.js'
import { penaltyOf } from '../helpers/blame.js'
import { connect, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { budgetedServer, honestJoiner } from './half-open-attack.js'

const TOPIC = 'roomy'
const COUNT = 300
const ITEM_BYTES = 8 * 1024
/**
 * Less than one whole contents frame (2 MiB + 64 KiB), more than the least a reply may be cut to. A contents
 * reply used to reserve a whole frame before it was built, so every request to this server was refused; the
 * same holds for any server whose peers' shares have shrunk below a frame (31 peer ids from one address, each
 * with one reply being built, shrink them to about 2 MiB).
 */
const BUDGET = 1024 * 1024

describe('contents replies cut to the room the reply budget gives', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('a server whose budget holds less than one whole frame serves a joiner every item, in replies within it', async () => {
    expect(BUDGET).toBeLessThan(MAX_FRAME_BYTES)
    expect(BUDGET).toBeGreaterThan(MIN_REPLY_RESERVE_BYTES)
    const server: DsfgNode = await budgetedServer({
      topic: TOPIC,
      count: COUNT,
      itemBytes: ITEM_BYTES,
      seed: 21,
      deadlineMs: 10_000,
      budget: BUDGET,
      perPeer: BUDGET
    })
    running.push(server)
    const joiner = await honestJoiner(TOPIC)
    running.push(joiner)
    const penalised: string[] = []
    joiner.topic.addEventListener('peer:penalised', (e) => penalised.push(e.detail.peer))
    await connect(joiner.node, server)
    joiner.follow().catch(() => undefined)
    await until(async () => (await joiner.topic.head()) === COUNT - 1, 'the joiner to download every item', 15_000)
    // Replies built at once still share the budget (some requests are refused while others are held), and the
    // budget is never passed.
    expect(server.services.dsfg.replyStats().peak).toBeLessThanOrEqual(BUDGET)
    expect(penalised).toEqual([])
    expect(await penaltyOf(joiner.node, server.peerId)).toBe(0)
  }, 30_000)
})
