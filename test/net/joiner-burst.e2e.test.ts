import { afterEach, describe, expect, it } from 'vitest'
import { SERVER_CONNECTION_LIMITS } from '../../src/constants.js'
import { dialWithRetry } from '../../src/node/dial.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { buildSourceTrie, incompleteNodes, randomEntries } from '../helpers/trie-source.js'

/** Joiners started together against one server (issue 13: 15 of 20 were reset with libp2p's default limits). */
const JOINERS = 20

describe('a burst of joiners against one server', async () => {
  const source = await buildSourceTrie(randomEntries(7, 400))
  const running: DsfgNode[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it(`serves ${JOINERS} joiners that dial at once: every one completes with the whole trie`, async () => {
    const server = await createDsfgNode({ store: source.store, connectionLimits: SERVER_CONNECTION_LIMITS })
    running.push(server)
    const address = server.getMultiaddrs()[0]!
    const joiners = await Promise.all(
      Array.from({ length: JOINERS }, async () => {
        const store = new MemoryStore()
        const node = await createDsfgNode({ store })
        running.push(node)
        return { node, store }
      })
    )
    const results = await Promise.allSettled(
      joiners.map(async ({ node, store }) => {
        await dialWithRetry((a, o) => node.dial(a, o), address, { signal: AbortSignal.timeout(20_000) })
        const result = await node.services.dsfg.syncRoot(source.root, { signal: AbortSignal.timeout(30_000) })
        return { nodes: result.nodes, incomplete: await incompleteNodes(store), held: [...store.keys()].length }
      })
    )
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []))
    expect(failed).toEqual([])
    for (const r of results) {
      if (r.status !== 'fulfilled') continue
      expect(r.value).toEqual({ nodes: source.nodes.size, incomplete: [], held: source.nodes.size })
    }
  }, 60_000)
})
