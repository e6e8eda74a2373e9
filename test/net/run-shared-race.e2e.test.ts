import { afterEach, describe, expect, it } from 'vitest'
import type { KVStore } from '../../src/store/kv-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { Prng } from '../../src/util/prng.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { WrappedStore } from '../helpers/wrapped-store.js'

const TOPIC = 'race'
const COUNT = 3000

/**
 * Every store write takes `delayMs` (300 ms until the test says otherwise): the topic's sync loop then needs a
 * while to wind down after an abort.
 */
class SlowStore extends WrappedStore {
  writing = 0
  delayMs = 300

  override async batch(ops: Parameters<KVStore['batch']>[0]): Promise<void> {
    this.writing++
    try {
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
      return await this.inner.batch(ops)
    } finally {
      this.writing--
    }
  }
}

/**
 * A follow() or syncOnce() that starts while the topic's previous caller is leaving (its loop still winding
 * down) gets a loop of its own, after that one, instead of joining the ending one and returning with it (found
 * in review: syncOnce returned head 47 of 2999, unsynced, without an error).
 */
describe('follow and syncOnce arriving while the previous caller leaves', () => {
  const running: DsfgNode[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  /**
   * A few turns of the event loop: the leaving caller's clean-up (which stops the loop and then waits for it
   * through a 300 ms store write) has begun, so the next caller arrives while the loop winds down.
   */
  async function leaveStarted(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * A joiner whose first follower leaves during a store write: the loop is winding down when this resolves.
   * Once that follower has returned (its loop is over), writes are fast again: the rest of the sync belongs to
   * the caller that arrived meanwhile, and slow writes there would only make it take longer.
   */
  async function firstCallerLeaving() {
    const { joiner, store } = await setup()
    const topic = joiner.services.dsfg.topic({ name: TOPIC, checkpointSync: false })
    const first = new AbortController()
    const leaving = topic.follow({ signal: first.signal }).finally(() => {
      store.delayMs = 0
    })
    await until(() => store.writing > 0, 'a store write in progress', 10_000, 1)
    first.abort()
    await leaveStarted()
    return { topic, leaving }
  }

  async function setup(): Promise<{ joiner: DsfgNode; store: SlowStore }> {
    const source = await createDsfgNode({ store: new MemoryStore() })
    running.push(source)
    const prng = new Prng(3)
    await source.services.dsfg.topicStore.appendMany(TOPIC, Array.from({ length: COUNT }, () => prng.bytes(20)))
    const store = new SlowStore(new MemoryStore())
    const joiner = await createDsfgNode({ store })
    running.push(joiner)
    await connect(joiner, source)
    return { joiner, store }
  }

  it('syncOnce still syncs to the end', async () => {
    const { topic, leaving } = await firstCallerLeaving()
    const head = await topic.syncOnce({ signal: AbortSignal.timeout(20_000) })
    await leaving
    expect({ head, mode: topic.mode }).toEqual({ head: COUNT - 1, mode: 'synced' })
  }, 30_000)

  it('follow keeps following until its own signal aborts', async () => {
    const { topic, leaving } = await firstCallerLeaving()
    const second = new AbortController()
    let returned = false
    const staying = topic.follow({ signal: second.signal }).then(() => {
      returned = true
    })
    await leaving
    // The new follower catches up and is still following: it returns only when its own signal aborts.
    await until(async () => (await topic.head()) === COUNT - 1 && topic.mode === 'synced', 'the second follower to catch up', 20_000)
    expect(returned).toBe(false)
    second.abort()
    await staying
    expect(returned).toBe(true)
  }, 30_000)
})
