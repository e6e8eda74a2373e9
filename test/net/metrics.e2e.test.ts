import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { ReplyBudget } from '../../src/net/reply-budget.js'
import { registerDsfgMetrics } from '../../src/service/dsfg-metrics.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { buildSourceTrie, randomEntries } from '../helpers/trie-source.js'

const TOPIC = 'metrics'

/**
 * A node whose metrics go to a registry of its own. `@libp2p/prometheus-metrics` keeps one map of metrics by
 * name per process and clears it when a node is created (unless told to preserve it), so each node registers
 * afresh in its own registry: two nodes in one process each count their own.
 */
async function meteredNode(store = new MemoryStore()): Promise<{ node: DsfgNode; registry: Registry }> {
  const registry = new Registry()
  const node = await createDsfgNode({
    store,
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: false })
  })
  return { node, registry }
}

/** The value of `name` (with `label="value"` when given) in the registry's Prometheus text; 0 when absent. */
async function read(registry: Registry, name: string, label?: string): Promise<number> {
  const text = await registry.metrics()
  const series = label === undefined ? name : `${name}{${label}}`
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

describe('metrics of a DSFG node', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  it('counts the nodes, bytes and requests of a state sync on both sides', async () => {
    const source = await buildSourceTrie(randomEntries(7, 400))
    const server = await meteredNode(source.store)
    running.push(server.node)
    const client = await meteredNode()
    running.push(client.node)
    await connect(client.node, server.node)

    const result = await client.node.services.dsfg.syncRoot(source.root, { signal: AbortSignal.timeout(20_000) })

    expect(result.nodes).toBe(source.nodes.size)
    expect(await read(client.registry, 'dsfg_trie_nodes_verified_total')).toBe(result.nodes)
    expect(await read(client.registry, 'dsfg_trie_node_bytes_verified_total')).toBe(result.bytes)
    const sent = await read(client.registry, 'dsfg_requests_sent_total', 'request="nodes:ok"')
    expect(sent).toBeGreaterThan(0)
    expect(await read(server.registry, 'dsfg_requests_served_total', 'request="nodes:ok"')).toBe(sent)
    // The server's reply budget held the replies while they went out, and holds nothing now.
    expect(await read(server.registry, 'dsfg_reply_budget', 'stat="peak_bytes"')).toBeGreaterThan(0)
    expect(await read(server.registry, 'dsfg_reply_budget', 'stat="in_flight_bytes"')).toBe(0)
    expect(await read(server.registry, 'dsfg_reply_budget', 'stat="refused"')).toBe(0)
    // The sync is over: no sync running, nothing pending.
    expect(await read(client.registry, 'dsfg_state_syncs_running')).toBe(0)
    expect(await read(client.registry, 'dsfg_trie_nodes_pending')).toBe(0)
  })

  it('counts the items, bytes and requests of a topic sync, and shows the topic synced', async () => {
    const server = await meteredNode()
    running.push(server.node)
    const published = server.node.services.dsfg.topic({ name: TOPIC, publisher: server.node.peerId })
    for (let i = 0; i < 40; i++) await published.publish(Uint8Array.of(i, 1, 2))
    await published.checkpoint()
    const client = await meteredNode()
    running.push(client.node)
    await connect(client.node, server.node)

    const topic = client.node.services.dsfg.topic({ name: TOPIC, publisher: server.node.peerId })
    expect(await topic.syncOnce({ signal: AbortSignal.timeout(20_000) })).toBe(39)

    expect(await read(client.registry, 'dsfg_topic_items_verified_total')).toBe(40)
    expect(await read(client.registry, 'dsfg_topic_item_bytes_verified_total')).toBe(120)
    expect(await read(client.registry, 'dsfg_requests_sent_total', 'request="status:ok"')).toBeGreaterThan(0)
    const contents = await read(client.registry, 'dsfg_requests_sent_total', 'request="contents:ok"')
    expect(contents).toBeGreaterThan(0)
    expect(await read(server.registry, 'dsfg_requests_served_total', 'request="contents:ok"')).toBe(contents)
    expect(await read(client.registry, 'dsfg_topic_head', `topic="${TOPIC}"`)).toBe(39)
    expect(await read(client.registry, 'dsfg_topic_target', `topic="${TOPIC}"`)).toBe(39)
    expect(await read(client.registry, 'dsfg_topics', 'mode="synced"')).toBe(1)
    // Nobody misbehaved.
    expect(await client.registry.metrics()).not.toMatch(/^dsfg_peer_offences_total\{/m)
  })

  it('registers nothing and syncs as before on a node without metrics', async () => {
    expect(registerDsfgMetrics(undefined, { stateSyncs: () => [], topics: async () => [], replyBudget: () => new ReplyBudget().stats() })).toBeUndefined()
    const server = await createDsfgNode({ store: new MemoryStore() })
    running.push(server)
    const published = server.services.dsfg.topic({ name: TOPIC, publisher: server.peerId })
    for (let i = 0; i < 10; i++) await published.publish(Uint8Array.of(i))
    await published.checkpoint()
    const client = await createDsfgNode({ store: new MemoryStore() })
    running.push(client)
    await connect(client, server)
    const topic = client.services.dsfg.topic({ name: TOPIC, publisher: server.peerId })
    expect(await topic.syncOnce({ signal: AbortSignal.timeout(20_000) })).toBe(9)
  })
})
