import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory-store.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { buildSourceTrie, incompleteNodes, randomEntries } from '../helpers/trie-source.js'

describe('state sync over libp2p', async () => {
  const source = await buildSourceTrie(randomEntries(42, 1500))
  const nodes: DsfgNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  it('syncs a root from one server to one client', async () => {
    const server = await createDsfgNode({ store: source.store })
    const store = new MemoryStore()
    const client = await createDsfgNode({ store })
    nodes.push(server, client)
    await connect(client, server)
    const result = await client.services.dsfg.syncRoot(source.root, { signal: AbortSignal.timeout(20_000) })
    expect(result.nodes).toBe(source.nodes.size)
    expect(new Set(store.keys())).toEqual(new Set(source.nodes.keys()))
    expect(await incompleteNodes(store)).toEqual([])
  })
})
