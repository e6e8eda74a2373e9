import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidProofError, UsageError } from '../../errors.js'
import { verifyProof } from '../../proof/proof.js'
import { equalBytes, uint64BE } from '../../util/bytes.js'
import { fromHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { writeJson } from '../io.js'
import { terminationSignal } from '../signals.js'
import { DemoFailedError } from './demo-child.js'
import { DemoLog } from './demo-log.js'
import { DEMO_CHECKPOINT_INTERVAL_MS, DEMO_SEED, type DemoEventOf, expectedItems } from './demo-protocol.js'
import { DEMO_SERVERS, DEMO_TOPIC, type DemoOutcome, DemoRun } from './demo-run.js'

export { DemoFailedError } from './demo-child.js'

const DEFAULT_DEMO_ITEMS = 50_000
const MAX_DEMO_ITEMS = 10_000_000
/**
 * Live items a second. Every follower checks the publisher's signature on every copy of every gossiped item
 * it receives (gossipsub verifies before it drops duplicates), and the joiner receives each item from all four
 * of its peers: at 200 a second that alone kept a 2-core machine busy and the joiner never caught up within
 * the deadline; 50 leaves the machine to the sync.
 */
const DEFAULT_DEMO_RATE = 50
const MAX_DEMO_RATE = 10_000

/** A whole-number flag within bounds, else a one-line usage error. */
function boundedFlag(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${name} must be a whole number from 1 to ${max}`)
  }
  return n
}

/** The stores must start empty: a directory left by another run would hold another history. */
async function freshDataDir(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((err: { code?: string }) => {
    if (err.code === 'ENOENT') return []
    throw err
  })
  if (entries.length > 0) throw new UsageError(`--data ${dir} is not empty: the demo needs fresh stores`)
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: SUMMARIES.demo,
  description: [
    'Runs five processes on 127.0.0.1, each a libp2p node (TCP, noise, yamux, gossipsub) with its own LevelDB:',
    '  1. a publisher generates a topic history of --items items (100-300 random bytes each), then keeps',
    `     publishing --rate live items a second and a signed checkpoint every ${DEMO_CHECKPOINT_INTERVAL_MS / 1000} s;`,
    '  2. three servers start empty, download the history from the publisher, follow the topic and serve it;',
    '  3. once they have the history, a late joiner dials them and the publisher and catches up by checkpoint',
    '     sync (the topic trie at a publisher checkpoint, trie-synced and adopted while the items after it',
    '     download, re-targeted as newer checkpoints arrive), then it follows live items;',
    '  4. the publisher stops; the joiner must reach its final head with the same root, and proves items',
    "     that are checked against the publisher's root and the bytes it published.",
    'Progress goes to stderr; one verified summary JSON object to stdout (exit 0 only when verified). The',
    'stores live in a temporary directory, removed at the end unless --data names one (which must be empty).'
  ].join('\n'),
  options: {
    items: { type: 'string', value: 'N', description: `items of history to generate (default ${DEFAULT_DEMO_ITEMS})` },
    rate: { type: 'string', value: 'N', description: `live items published a second (default ${DEFAULT_DEMO_RATE})` },
    data: { type: 'string', value: 'DIR', description: 'keep the five stores in DIR (must be empty or absent)' }
  },
  async run({ options }, io) {
    const items = boundedFlag(options.items, '--items', DEFAULT_DEMO_ITEMS, MAX_DEMO_ITEMS)
    const rate = boundedFlag(options.rate, '--rate', DEFAULT_DEMO_RATE, MAX_DEMO_RATE)
    if (options.data !== undefined) await freshDataDir(options.data)
    const log = new DemoLog(io.stderr)
    const interrupt = terminationSignal()
    const dir = options.data ?? (await mkdtemp(join(tmpdir(), 'dsfg-demo-')))
    try {
      log.line(`dsfg demo: ${items} items, ${DEMO_SERVERS} servers, ${rate} live items/s; stores in ${dir}`)
      const run = new DemoRun({ items, rate, dir, log, interrupt: interrupt.signal })
      const outcome = await run.run((proved, final) => checkJoiner(proved, final, items))
      await writeJson(io.stdout, summary(items, rate, outcome))
    } finally {
      interrupt.dispose()
      if (options.data === undefined) await rm(dir, { recursive: true, force: true })
    }
  }
})

/**
 * The end-to-end check: the joiner's head and root are the publisher's, and each proof verifies against the
 * publisher's root to exactly the bytes the publisher was given for that item.
 */
function checkJoiner(proved: DemoEventOf<'proofs'>, final: DemoEventOf<'published'>, items: number): void {
  if (proved.head !== final.head) throw new DemoFailedError(`the joiner's head is ${proved.head}, the publisher's ${final.head}`)
  if (proved.root !== final.root) {
    throw new DemoFailedError(`root mismatch at head ${final.head}: joiner ${proved.root}, publisher ${final.root}`)
  }
  const root = fromHex(final.root)
  const expected = expectedItems(DEMO_SEED, items, proved.proofs.map((p) => p.n))
  for (const { n, proof } of proved.proofs) {
    let value: Uint8Array | null
    try {
      value = verifyProof(root, uint64BE(n), proof.map((node) => fromHex(node)))
    } catch (err) {
      if (!(err instanceof InvalidProofError)) throw err
      throw new DemoFailedError(`the joiner's proof of item ${n} does not verify against the publisher's root: ${err.message}`)
    }
    if (value === null || !equalBytes(value, expected.get(n)!)) {
      throw new DemoFailedError(`the joiner's item ${n} is not the one the publisher published`)
    }
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000
}

function summary(items: number, rate: number, outcome: DemoOutcome): Record<string, unknown> {
  const { joiner, synced, final, proved } = outcome
  const trie = joiner.all('trie')
  const progress = joiner.all('trie-progress')
  const adopted = trie.filter((e) => e.what === 'adopted')
  const checkpoints = joiner.all('checkpoint')
  const roundAll = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, round(v)]))
  return {
    topic: DEMO_TOPIC,
    items,
    liveRate: rate,
    liveItems: final.liveItems,
    servers: DEMO_SERVERS,
    historyRoot: outcome.generated.root,
    publisherHead: final.head,
    joinerHead: proved.head,
    root: final.root,
    rootMatch: true,
    checkpointsPublished: final.checkpoints,
    checkpointsSeen: checkpoints.filter((e) => e.status === 'received').length,
    checkpointMismatches: checkpoints.filter((e) => e.status === 'mismatch').length,
    checkpointSync: {
      used: adopted.length > 0,
      started: trie.filter((e) => e.what === 'started').length,
      retargets: trie.filter((e) => e.what === 'retarget').length,
      failed: trie.filter((e) => e.what === 'failed').length,
      adoptedCheckpoint: adopted.at(-1)?.number ?? null,
      nodes: Math.max(0, ...progress.map((e) => e.nodes)),
      bytes: Math.max(0, ...progress.map((e) => e.bytes))
    },
    throughput: {
      items: synced.head + 1,
      seconds: round(synced.seconds),
      itemsPerSecond: Math.round((synced.head + 1) / Math.max(synced.seconds, 0.001))
    },
    phases: roundAll(outcome.phases),
    proofs: { checked: proved.proofs.length, valid: true },
    cpuSeconds: roundAll(outcome.cpuSeconds),
    pids: outcome.pids,
    verified: true
  }
}
