/**
 * The numbered-batch downloader over real libp2p on loopback, as users run it: `dsfg serve --topic` processes
 * (each on its own copy of a store holding the topic) and one `dsfg sync --topic` process. Beside it, in the
 * same run, the raw throughput of one libp2p stream (TCP, noise, yamux) pushing the same bytes from one
 * process to another (stream-peer.ts), measured before and after the syncs; the higher of the two counts.
 *
 * Each server count runs four times: trusting the publisher (`--publisher`: every batch comes with a range
 * proof against its signed checkpoint root, no content hashes) and by quorum (content hashes from peers, the
 * mode before signed checkpoints), each with every item through the downloader (`--items-only`) and as users
 * run it (the checkpoint's topic trie synced, then adopted). Beside them, what a proof costs per batch: its bytes and the time to verify one
 * batch of a reply's size with its proof in this process.
 *
 *   npm run build && npm run bench:topic-sync                 (20k items of 1 KiB, 1 and 4 servers)
 *   npm run bench:topic-sync -- --items 100000 --bytes 1024
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MAX_ITEMS_PER_REQUEST, MAX_RESPONSE_BYTES } from '../src/constants.js'
import { createRangeProof, verifyRangeProof } from '../src/proof/range-proof.js'
import type { KVStore } from '../src/store/kv-store.js'
import { LevelStore } from '../src/store/level-store.js'
import { recordSignedCheckpoint } from '../src/topic/checkpoint-record.js'
import { uint64BE } from '../src/util/bytes.js'
import { TopicStore } from '../src/topic/topic-store.js'
import { Prng } from '../src/util/prng.js'
import { compactLevelDb, peerArgs, round, runDsfg, startServers, withTempDir } from './processes.js'
import { rawStreamMBps } from './stream-peer.js'

export const TOPIC = 'bench'
/** Items per `appendMany` while building the source. */
const APPEND_BATCH = 4096

export interface TopicSyncRun {
  servers: number
  /** `publisher`: proven batches; `quorum:1`: content hashes. */
  trust: 'publisher' | 'quorum:1'
  /** `items`: `--items-only`, every item through the downloader; `checkpoint`: the trie of the checkpoint synced. */
  path: 'items' | 'checkpoint'
  /** The download as `dsfg sync --topic` reports it. */
  seconds: number
  /** The `dsfg sync` process from spawn to exit. */
  wallS: number
  itemsPerSecond: number
  MBPerS: number
  /** MB/s over the raw stream's MB/s. */
  overRaw: number
}

export interface TopicSyncResult {
  items: number
  itemBytes: number
  MB: number
  /** The raw stream before and after the syncs. */
  rawStreamMBPerSRuns: number[]
  rawStreamMBPerS: number
  runs: TopicSyncRun[]
  /** One batch as a server sends it (as many items as fit `MAX_RESPONSE_BYTES`), proven. */
  proof: { batchItems: number; proofNodes: number; proofBytes: number; batchBytes: number; verifyMs: number }
}

interface TopicSummary {
  items: number
  seconds: number
  itemsPerSecond: number
}

/**
 * A LevelDB at `path` holding `items` random items of `itemBytes` on topic TOPIC, compacted: a store written in
 * one burst closes with compactions still owed, and every server opening a copy of it paid them during the
 * sync (measured: 4 servers on copies of a 100k-item source burned 5 s of CPU more than on compacted copies,
 * on a 2-vCPU machine where the client competes for it). A long-running server has settled its store.
 */
export async function buildTopicSource(path: string, items: number, itemBytes: number): Promise<{ publisher: string; proof: TopicSyncResult['proof'] }> {
  const store = await LevelStore.open(path)
  let signed: { publisher: string; proof: TopicSyncResult['proof'] }
  try {
    const prng = new Prng(1)
    const topics = new TopicStore(store)
    for (let i = 0; i < items; i += APPEND_BATCH) {
      await topics.appendMany(
        TOPIC,
        Array.from({ length: Math.min(APPEND_BATCH, items - i) }, () => prng.bytes(itemBytes))
      )
    }
    signed = await signCheckpoint(topics, store, items, itemBytes)
  } finally {
    await store.close()
  }
  await compactLevelDb(path)
  return signed
}

/**
 * Signs the source's checkpoint with a publisher key of its own (not a server's: each server copy makes its
 * own node key), so `sync --publisher` can trust it; and measures one proven batch from the middle.
 */
async function signCheckpoint(
  topics: TopicStore,
  store: KVStore,
  items: number,
  itemBytes: number
): Promise<{ publisher: string; proof: TopicSyncResult['proof'] }> {
  const record = (await recordSignedCheckpoint(topics, TOPIC, await generateKeyPair('Ed25519')))!
  const cp = record.checkpoint
  const batchItems = Math.min(MAX_ITEMS_PER_REQUEST, Math.max(1, Math.floor(MAX_RESPONSE_BYTES / itemBytes)), items)
  const from = Math.max(0, Math.floor(items / 2) - batchItems)
  const batch = await topics.getContents(TOPIC, from, batchItems)
  const last = from + batch.length - 1
  const proof = await createRangeProof(store, cp.root, uint64BE(from), uint64BE(last))
  const runs = 20
  const started = performance.now()
  for (let i = 0; i < runs; i++) {
    verifyRangeProof(cp.root, uint64BE(from), uint64BE(last), batch.map((item) => uint64BE(item.n)), batch.map((item) => item.data), proof)
  }
  return {
    publisher: record.signer.toString(),
    proof: {
      batchItems: batch.length,
      proofNodes: proof.length,
      proofBytes: proof.reduce((sum, node) => sum + node.length, 0),
      batchBytes: batch.reduce((sum, item) => sum + item.data.length, 0),
      verifyMs: round((performance.now() - started) / runs, 2)
    }
  }
}

/** Downloads `items` items of `itemBytes` with `dsfg sync --topic` from each count of servers in `serverCounts`. */
export async function measureTopicSync(items: number, itemBytes: number, serverCounts: number[] = [1, 4]): Promise<TopicSyncResult> {
  return withTempDir('dsfg-bench-topic-', async (dir) => {
    const source = join(dir, 'source')
    const { publisher, proof } = await buildTopicSource(source, items, itemBytes)
    const totalBytes = items * itemBytes
    const rawRuns = [await rawStreamMBps(totalBytes)]
    const synced: Omit<TopicSyncRun, 'overRaw'>[] = []
    for (const n of serverCounts) {
      const servers = await startServers(source, dir, `server-${n}`, n, ['--topic', TOPIC])
      try {
        for (const path of ['items', 'checkpoint'] as const) {
          for (const trust of ['publisher', 'quorum:1'] as const) {
            const target = join(dir, `client-${n}-${path}-${trust === 'publisher' ? 'publisher' : 'quorum'}`)
            const args = [...(trust === 'publisher' ? ['--publisher', publisher] : []), ...(path === 'items' ? ['--items-only'] : [])]
            const { summary, wallS } = await runDsfg<TopicSummary>(['sync', '--data', target, ...peerArgs(servers.addrs), '--topic', TOPIC, ...args])
            if (summary.items !== items) throw new Error(`synced ${summary.items} items, expected ${items}`)
            const MBPerS = round(totalBytes / 1e6 / summary.seconds)
            synced.push({ servers: n, trust, path, seconds: summary.seconds, wallS: round(wallS), itemsPerSecond: summary.itemsPerSecond, MBPerS })
          }
        }
      } finally {
        await servers.stop()
      }
    }
    rawRuns.push(await rawStreamMBps(totalBytes))
    // The better raw run: the comparison must not profit from a raw run slowed by other work on the machine.
    const raw = Math.max(...rawRuns)
    return {
      items,
      itemBytes,
      MB: round(totalBytes / 1e6, 1),
      rawStreamMBPerSRuns: rawRuns.map((r) => round(r, 1)),
      rawStreamMBPerS: round(raw, 1),
      runs: synced.map((run) => ({ ...run, overRaw: round(run.MBPerS / raw, 3) })),
      proof
    }
  })
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { items: { type: 'string' }, bytes: { type: 'string' } } })
  const result = await measureTopicSync(Number(values.items ?? 20_000), Number(values.bytes ?? 1024))
  for (const run of result.runs) {
    console.log(
      JSON.stringify({
        items: result.items,
        itemBytes: result.itemBytes,
        servers: run.servers,
        trust: run.trust,
        path: run.path,
        seconds: run.seconds,
        itemsPerSecond: run.itemsPerSecond,
        MBPerS: run.MBPerS,
        rawStreamMBPerS: result.rawStreamMBPerS,
        overRaw: run.overRaw
      })
    )
  }
  console.log(JSON.stringify({ proofPerBatch: result.proof }))
}
