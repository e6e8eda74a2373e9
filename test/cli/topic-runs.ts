import { type ChildProcess, spawn } from 'node:child_process'
import { expect } from 'vitest'
import type { Item } from '../../src/fsm/types.js'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { type Adversary, createAdversary } from '../helpers/adversary.js'
import { until } from '../helpers/wait.js'
import { storedItems, topicRoot } from '../helpers/topic-data.js'
import { REPO_ROOT } from './cli-harness.js'
import { newIdentity, withTimeout } from './crash-loop.js'

/**
 * Interrupted `dsfg sync --topic` runs against one serving peer: the crash loop (SIGKILL) and the clean stops
 * (SIGINT, SIGTERM) share it. Each run is a new peer (its node key is removed first), so the item ranges the
 * server was asked for can be told apart by run, and after a run the test process opens the LevelDB itself to
 * check what was left.
 */

export const TOPIC = 'ledger'

/** Item ranges `[from, to]` one requesting peer asked the server for. */
interface Asked {
  contents: [number, number][]
  hashes: [number, number][]
}

export interface TopicSource {
  items: Item[]
  /** The server's multiaddr, with its peer id. */
  addr: string
  /** What each requesting peer asked for, by peer id. */
  asked: Map<string, Asked>
  stop(): Promise<void>
}

/**
 * A peer serving `count` seeded items of `TOPIC` honestly, each contents request `delayMs` late so that a
 * loopback download lasts long enough for a signal to land in the middle of it.
 */
export async function topicSource(seed: number, count: number, delayMs: number): Promise<TopicSource> {
  const prng = new Prng(seed)
  const datas = Array.from({ length: count }, () => prng.bytes(20 + prng.int(60)))
  const topics = new TopicStore(new MemoryStore())
  await topics.appendMany(TOPIC, datas)
  const asked = new Map<string, Asked>()
  const of = (peer: string): Asked => {
    const list = asked.get(peer) ?? { contents: [], hashes: [] }
    asked.set(peer, list)
    return list
  }
  const server: Adversary = await createAdversary({
    topics,
    behaviour: {
      contents: ({ peer, request: { from, amount } }) => {
        of(peer).contents.push([from, from + amount - 1])
        return { delayMs }
      },
      hashes: ({ peer, request: { from, to } }) => {
        of(peer).hashes.push([from, to])
        return 'honest'
      }
    }
  })
  return {
    items: datas.map((data, n) => ({ n, data })),
    addr: server.node.getMultiaddrs()[0]!.toString(),
    asked,
    stop: server.stop
  }
}

/** A `dsfg sync --topic` child process. */
export interface TopicRun {
  child: ChildProcess
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stdout(): string
  stderr(): string
  /** What this run asked the server for (nothing before its first request). */
  asked(): Asked
  /** Items this run asked for in contents requests, counted with repeats. */
  itemsAsked(): number
}

/** Starts `dsfg sync --topic` into `data` from `source` as a new peer. */
export async function startTopicSync(bin: string, source: TopicSource, data: string, timeoutMs: number): Promise<TopicRun> {
  await newIdentity(data)
  const known = new Set(source.asked.keys())
  const child = spawn(process.execPath, [bin, 'sync', '--data', data, '--peer', source.addr, '--topic', TOPIC], {
    cwd: REPO_ROOT,
    env: { ...process.env, DSFG_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs
  })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk))
  // 'close', not 'exit': the output is complete only once the pipes have closed.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal }))
  )
  const asked = (): Asked => {
    const peer = [...source.asked.keys()].find((p) => !known.has(p))
    return (peer === undefined ? undefined : source.asked.get(peer)) ?? { contents: [], hashes: [] }
  }
  return {
    child,
    exited,
    stdout: () => Buffer.concat(stdout).toString('utf8'),
    stderr: () => Buffer.concat(stderr).toString('utf8'),
    asked,
    itemsAsked: () => asked().contents.reduce((sum, [from, to]) => sum + to - from + 1, 0)
  }
}

/**
 * Waits until `run` has asked for `items` items, then sends it `signal`; fails if it exited first (it would
 * have finished before the interruption the test is about).
 */
export async function interruptAt(run: TopicRun, items: number, signal: NodeJS.Signals, timeoutMs: number) {
  let early: { code: number | null } | undefined
  void run.exited.then((e) => {
    early = e
  })
  await until(() => run.itemsAsked() >= items || early !== undefined, `the run to ask for ${items} items`, timeoutMs, 2)
  if (early !== undefined) throw new Error(`the run exited (code ${early.code}) before ${signal}: ${run.stderr().trim() || 'no stderr'}`)
  run.child.kill(signal)
  return withTimeout(run.exited, 10_000, `the run to exit after ${signal}`)
}

/**
 * Opens the run's store (the child is gone, so the LevelDB lock is free) and checks it is consistent: items
 * `0..head` are the source's, and the topic trie's root is theirs. Returns the head.
 */
export async function expectConsistentStore(data: string, source: TopicSource): Promise<number> {
  const store = await LevelStore.open(data, { createIfMissing: false })
  try {
    const topics = new TopicStore(store)
    const head = await topics.head(TOPIC)
    const stored = (await storedItems(topics, TOPIC, head)).map((item) => `${item.n}:${toHex(item.data)}`)
    expect(stored).toEqual(source.items.slice(0, head + 1).map((item) => `${item.n}:${toHex(item.data)}`))
    expect(toHex(await topics.root(TOPIC))).toBe(toHex(topicRoot(source.items.slice(0, head + 1).map((item) => item.data))))
    return head
  } finally {
    await store.close()
  }
}

/** Items at or below `head` (stored before the run started) that `asked` asked for again, contents or hashes. */
export function askedAgain(asked: Asked, head: number): number {
  let again = 0
  for (const [from, to] of asked.contents) again += Math.max(0, Math.min(to, head) - from + 1)
  // A hashes request starts one item early on purpose: the source's hash of our last item must be ours (the
  // anchor that keeps another history's hashes out). That one item is no item fetched again.
  for (const [from, to] of asked.hashes) again += Math.max(0, Math.min(to, head) - from + 1 - (from === head ? 1 : 0))
  return again
}

/** The lines of `stderr` that are not JSON progress lines. */
export function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{'))
}
