import { createInterface } from 'node:readline'
import { UsageError } from '../../errors.js'
import { createDsfgNode, type DsfgLibp2p } from '../../node/create-node.js'
import { LevelStore } from '../../store/level-store.js'
import type { TopicHandle } from '../../topic/topic-handle.js'
import { toHex } from '../../util/hex.js'
import { type CliIo, defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { multiaddrFlag, numberFlag, peerIdFlag } from '../flags.js'
import { nodeKeyFor } from '../node-key.js'
import { terminationSignal } from '../signals.js'
import { DEMO_CHECKPOINT_INTERVAL_MS, DEMO_ROLES, DEMO_SEED, type DemoCommand, type DemoEvent, type DemoRole, writeEvent } from './demo-protocol.js'
import { runFollower, runPublisher } from './demo-roles.js'

/** What a role runs with. */
export interface RoleContext {
  readonly node: DsfgLibp2p
  readonly topic: TopicHandle
  readonly io: CliIo
  /** Aborts on `{"cmd":"stop"}`, at the end of stdin, on SIGINT/SIGTERM, and when the role fails. */
  readonly signal: AbortSignal
  readonly items: number
  readonly rate: number
  readonly checkpointMs: number
  readonly seed: number
  readonly peers: readonly string[]
  emit(event: DemoEvent): Promise<void>
  /** Calls `handler` with every command from the parent except `stop`. */
  onCommand(handler: (cmd: DemoCommand) => void): void
}

const COMMAND_NAMES: ReadonlySet<string> = new Set(['stop-publishing', 'prove', 'stop'])

/** Calls `onCommand` for each JSON line `{"cmd":…}` on stdin and `onEnd` when it ends; returns the stop. */
function readCommands(io: CliIo, onCommand: (cmd: DemoCommand) => void, onEnd: () => void): () => void {
  const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY })
  lines.on('line', (line) => {
    if (line.trim() === '') return
    let cmd: unknown
    try {
      cmd = JSON.parse(line)
    } catch {
      cmd = undefined
    }
    const name = (cmd as { cmd?: unknown } | undefined)?.cmd
    if (typeof name !== 'string' || !COMMAND_NAMES.has(name)) {
      io.stderr.write(`dsfg demo-node: ignoring unknown command ${JSON.stringify(line)}\n`)
      return
    }
    onCommand(cmd as DemoCommand)
  })
  lines.on('close', onEnd)
  return () => {
    lines.off('close', onEnd)
    lines.close()
  }
}

function roleFlag(value: string): DemoRole {
  const role = DEMO_ROLES.find((r) => r === value)
  if (role === undefined) throw new UsageError(`--role must be one of ${DEMO_ROLES.join(', ')}`)
  return role
}

/**
 * One process of `dsfg demo`: not for direct use, so `dsfg --help` does not list it. Events go to stdout as
 * JSON lines (demo-protocol.ts), commands come on stdin; it stops its node, closes its store and exits 0 on
 * `{"cmd":"stop"}`, at the end of stdin (the parent is gone) or on SIGINT/SIGTERM.
 */
export const demoNodeCommand = defineCommand({
  name: 'demo-node',
  summary: SUMMARIES['demo-node'],
  description: [
    'Internal to `dsfg demo`, which starts one process per role: events are JSON lines on stdout, commands',
    'JSON lines on stdin (see src/cli/commands/demo-protocol.ts).'
  ].join('\n'),
  options: {
    role: { type: 'string', value: 'ROLE', required: true, description: DEMO_ROLES.join(' | ') },
    data: { type: 'string', value: 'DIR', required: true, description: 'LevelDB directory of this node' },
    topic: { type: 'string', value: 'T', required: true, description: 'topic name' },
    publisher: { type: 'string', value: 'PEERID', description: "followers: the topic's publisher" },
    peer: { type: 'string', value: 'MADDR', multiple: true, description: 'followers: peer to dial (repeatable)' },
    items: { type: 'string', value: 'N', description: 'publisher: items of generated history' },
    rate: { type: 'string', value: 'N', description: 'publisher: live items per second' },
    'checkpoint-ms': { type: 'string', value: 'MS', description: `publisher: time between checkpoints (default ${DEMO_CHECKPOINT_INTERVAL_MS})` },
    seed: { type: 'string', value: 'N', description: `publisher: item seed (default ${DEMO_SEED})` }
  },
  async run({ options }, io) {
    const role = roleFlag(options.role)
    const publisher = options.publisher === undefined ? undefined : peerIdFlag(options.publisher, '--publisher')
    for (const p of options.peer) multiaddrFlag(p)
    const settings = {
      items: numberFlag(options.items, '--items') ?? 0,
      rate: numberFlag(options.rate, '--rate') ?? 0,
      checkpointMs: numberFlag(options['checkpoint-ms'], '--checkpoint-ms') ?? DEMO_CHECKPOINT_INTERVAL_MS,
      seed: numberFlag(options.seed, '--seed') ?? DEMO_SEED
    }
    const stop = terminationSignal()
    const quit = new AbortController()
    const signal = AbortSignal.any([stop.signal, quit.signal])
    const store = await LevelStore.open(options.data)
    try {
      const config = { name: options.topic, publisher }
      const node = await createDsfgNode({ store, topics: [config], privateKey: await nodeKeyFor(options.data) })
      const handlers: ((cmd: DemoCommand) => void)[] = []
      const stopReading = readCommands(
        io,
        (cmd) => {
          if (cmd.cmd === 'stop') quit.abort()
          else for (const handler of handlers) handler(cmd)
        },
        () => quit.abort()
      )
      const topic = node.services.dsfg.topic(config)
      try {
        // Never rejects: events are fired from listeners with `void`, and a parent that went away (EPIPE) ends
        // this process through its own stop path anyway.
        const emit = (event: DemoEvent): Promise<void> => writeEvent(io.stdout, event).catch(() => undefined)
        await emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })
        const context: RoleContext = {
          node,
          topic,
          io,
          signal,
          ...settings,
          peers: options.peer,
          emit,
          onCommand: (handler) => handlers.push(handler)
        }
        await (role === 'publisher' ? runPublisher(context) : runFollower(context, role === 'joiner'))
      } finally {
        quit.abort()
        stopReading()
        await node.stop()
      }
      // The node is stopped, nothing changes the topic any more: this is what the store keeps.
      const usage = process.cpuUsage()
      await writeEvent(io.stdout, {
        event: 'stopped',
        head: await topic.head(),
        root: toHex(await topic.root()),
        cpuSeconds: (usage.user + usage.system) / 1e6
      })
    } finally {
      stop.dispose()
      await store.close()
    }
  }
})
