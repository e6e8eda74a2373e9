import type { ComponentLogger, Logger } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { Status } from '../../src/net/codec.js'
import { peekStatus } from '../../src/net/request-outcome.js'
import { requestFrame } from '../../src/net/rpc.js'
import { CONTENTS_PROTOCOL } from '../../src/net/topic-protocols.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { createAdversary } from '../helpers/adversary.js'
import { connect, createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { until } from '../helpers/wait.js'
import { buildSourceTrie, randomEntries } from '../helpers/trie-source.js'

const TOPIC = 'logged'

interface Line {
  name: string
  level: 'debug' | 'error' | 'trace'
  text: string
}

/** A `ComponentLogger` that keeps every line, formatted loosely (the format string and its arguments). */
function captureLogger(): { logger: ComponentLogger; lines: Line[] } {
  const lines: Line[] = []
  const text = (formatter: unknown, args: unknown[]): string => [formatter, ...args].map(String).join(' ')
  const forComponent = (name: string): Logger =>
    Object.assign((formatter: unknown, ...args: unknown[]) => lines.push({ name, level: 'debug', text: text(formatter, args) }), {
      error: (formatter: unknown, ...args: unknown[]) => lines.push({ name, level: 'error', text: text(formatter, args) }),
      trace: (formatter: unknown, ...args: unknown[]) => lines.push({ name, level: 'trace', text: text(formatter, args) }),
      enabled: true,
      newScope: (scope: string) => forComponent(`${name}:${scope}`)
    }) as Logger
  return { logger: { forComponent }, lines }
}

/** The lines of logger `name` at `level` (debug unless given) that match `pattern`. */
function linesOf(lines: Line[], name: string, pattern: RegExp, level: Line['level'] = 'debug'): Line[] {
  return lines.filter((l) => l.name === name && l.level === level && pattern.test(l.text))
}

describe('logging through components.logger', () => {
  const running: { stop(): unknown }[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  async function loggedNode(store = new MemoryStore()): Promise<{ node: DsfgNode; lines: Line[] }> {
    const { logger, lines } = captureLogger()
    const node = await createDsfgNode({ store, logger })
    running.push(node)
    return { node, lines }
  }

  it('the state syncer and its trie scheduler log a sync under dsfg:state-sync', async () => {
    const source = await buildSourceTrie(randomEntries(3, 300))
    const server = await loggedNode(source.store)
    const client = await loggedNode()
    await connect(client.node, server.node)
    const result = await client.node.services.dsfg.syncRoot(source.root, { signal: AbortSignal.timeout(20_000) })

    expect(linesOf(client.lines, 'dsfg:state-sync', /^syncing root %s/)).toHaveLength(1)
    expect(linesOf(client.lines, 'dsfg:state-sync', /^synced root %s: %d nodes/)[0]?.text).toContain(` ${result.nodes} `)
    expect(linesOf(client.lines, 'dsfg:state-sync:trie', /^stored %d nodes/).length).toBeGreaterThan(0)
    expect(client.lines.filter((l) => l.level === 'error' && l.name.startsWith('dsfg:'))).toEqual([])
  })

  it('the fetcher logs a bad reply, the service the offence, and the topic server a malformed request', async () => {
    const source = await loggedNode()
    const published = source.node.services.dsfg.topic({ name: TOPIC, publisher: source.node.peerId })
    for (let i = 0; i < 20; i++) await published.publish(Uint8Array.of(i, 9))
    await published.checkpoint()
    // Serves the source's topic honestly, except that every contents reply is not RLP.
    const liar = await createAdversary({
      store: source.node.services.dsfg.store,
      topics: source.node.services.dsfg.topicStore,
      behaviour: { contents: 'garbage' }
    })
    running.push(liar)
    const client = await loggedNode()
    const liarId = liar.node.peerId.toString()
    const fetcherBlamed = (): boolean =>
      linesOf(client.lines, 'dsfg:fetcher', /^%s request to %s: %s: %e/).some((l) => l.text.includes(`${liarId} peer-fault`))

    // The liar alone first, so that its garbage is asked for before the source can serve everything.
    await connect(client.node, liar.node)
    const topic = client.node.services.dsfg.topic({ name: TOPIC, publisher: source.node.peerId })
    const synced = topic.syncOnce({ signal: AbortSignal.timeout(20_000) })
    await until(fetcherBlamed, 'the fetcher to log the garbage reply')
    await connect(client.node, source.node)
    expect(await synced).toBe(19)
    expect(linesOf(client.lines, 'dsfg:service', /^peer %s: %s/).some((l) => l.text.includes(liarId))).toBe(true)

    // A contents request that is not RLP: answered INVALID_REQUEST, and logged by the source's topic server.
    const reply = await requestFrame((p, protocol, o) => client.node.dialProtocol(p, protocol, o), source.node.peerId, CONTENTS_PROTOCOL, Uint8Array.of(0xff), {
      maxResponseBytes: MAX_FRAME_BYTES
    })
    expect(peekStatus(reply)).toBe(Status.INVALID_REQUEST)
    const malformed = linesOf(source.lines, 'dsfg:topic-server', /^malformed contents request from %s/)
    expect(malformed).toHaveLength(1)
    expect(malformed[0]!.text).toContain(client.node.peerId.toString())
  })
})
