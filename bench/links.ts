/**
 * Both syncers over emulated links (issue 13, "Sync over real links"): `dsfg serve` processes dialled by one
 * `dsfg sync` process through link emulators (test/helpers/link-emulator.ts, a TCP proxy per server in this
 * process adding a one-way delay and a rate cap per direction). The scenarios are the issue's
 * (test/helpers/link-scenarios.ts) and two baselines: the fast link alone, and the same 4 servers dialled
 * directly on loopback.
 *
 * The trie sync is `dsfg sync --root` of an account-like trie; the topic catch-up is `dsfg sync --topic
 * --publisher --items-only`: every item through the numbered-batch downloader, each batch proven against the
 * signed checkpoint (the checkpoint's topic trie would be a trie sync, measured on its own above it).
 *
 * Per run: the sync's own seconds, the verified bytes (trie nodes; item data), their rate, that rate as a share
 * of the links' summed download capacity (capped scenarios), of the loopback baseline's rate, and of the fast
 * link alone's (with slow peers added); what the links carried each way (framing, proofs and requests
 * included); and the CPU seconds the client process used (sampled every 100 ms, so a little short).
 *
 *   npm run build && npm run bench:links                      (100k keys; 20k items of 1 KiB)
 *   npm run build && npm run bench:links -- --quick           (5k keys; 1k items)
 *   npm run build && npm run bench:links -- --keys 20000 --items 5000 --bytes 1024 --syncers trie
 *   npm run build && npm run bench:links -- --only '8 Mbit,fast'      (those scenarios and the loopback baseline)
 *   npm run build && npm run bench:links -- --syncers trie --only loopback --pin    (the client's CPU per node,
 *       servers on CPU 0 and the client on CPU 1: for that figure only, the four servers then share one core)
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { toHex } from '../src/util/hex.js'
import { type Link, type LinkOptions, linkTo } from '../test/helpers/link-emulator.js'
import { CRAWLER_FIRST, FAST_LINK, LINK_SCENARIOS, ONE_FAST_THREE_SLOW } from '../test/helpers/link-scenarios.js'
import { peerArgs, pinning, progress, round, runDsfg, type Servers, startServers, withTempDir } from './processes.js'
import { buildTopicSource, TOPIC } from './topic-sync-net.js'
import { buildAccountTrie } from './trie-sync-net.js'

const SEED = 1
const SERVERS = 4

type Syncer = 'trie' | 'topic'

/** One sync: which scenario, and what it moved. */
export interface LinkRun {
  syncer: Syncer
  scenario: string
  peers: number
  /** The sync as `dsfg sync` reports it (for the trie, without its final walk over the stored trie). */
  seconds: number
  /** The `dsfg sync` process from spawn to exit. */
  wallS: number
  /** Trie node bytes, or item bytes, fetched and verified. */
  verifiedMB: number
  MBPerS: number
  /** The links' summed download capacity; null when any link is uncapped or there are no links. */
  capacityMBPerS: number | null
  /**
   * MB/s over `capacityMBPerS`. A trie sync whose peers send subtries as their leaves verifies more node bytes
   * than cross the links (it builds the branch nodes itself), so this may pass 1: `linkOfCapacity` is the links'.
   */
  ofCapacity: number | null
  /** What the links carried towards the client per second of the sync, over `capacityMBPerS`. */
  linkOfCapacity: number | null
  /** MB/s over the loopback baseline's MB/s for the same syncer. */
  ofLoopback: number | null
  /** With one fast and three slow peers, or a crawler and a fast peer: MB/s over the fast peer's alone. */
  overFastAlone?: number
  /** What the links carried towards the client and towards the servers; null without links. */
  linkDownMB: number | null
  linkUpMB: number | null
  /** CPU seconds (user + system) of the `dsfg sync` process, at its last sample. */
  clientCpuS: number | null
  /** CPU µs the `dsfg sync` process spent in the trie sync per verified node, by its own count (trie only). */
  cpuUsPerNode?: number
}

/** A run's setting: dial the first `links.length` servers through these links, or `direct` servers straight. */
interface Setting {
  name: string
  links: readonly LinkOptions[] | null
  direct?: number
}

const LOOPBACK: Setting = { name: `${SERVERS} peers, loopback (no emulator)`, links: null, direct: SERVERS }
const FAST_ALONE: Setting = { name: '1 fast peer alone', links: [FAST_LINK] }
const SETTINGS: Setting[] = [LOOPBACK, FAST_ALONE, ...LINK_SCENARIOS]

interface TrieSummary {
  fetched: number
  bytes: number
  seconds: number
  cpuSeconds: number
}

interface TopicSummary {
  items: number
  fetched: number
  seconds: number
}

/** What one `dsfg sync` reported, in the terms every syncer shares. */
interface Synced {
  seconds: number
  verifiedBytes: number
  wallS: number
  clientCpuS: number | null
  cpuUsPerNode?: number
}

/** Opens `options` to the first servers of `addrs`; returns the links and the addresses to dial. */
async function openLinks(addrs: string[], options: readonly LinkOptions[]): Promise<{ links: Link[]; addrs: string[] }> {
  const links: Link[] = []
  const through: string[] = []
  try {
    for (const [i, shape] of options.entries()) {
      const opened = await linkTo(addrs[i]!, shape)
      links.push(opened.link)
      through.push(opened.addr)
    }
  } catch (err) {
    await Promise.all(links.map((l) => l.close()))
    throw err
  }
  return { links, addrs: through }
}

/** Runs `sync` against the servers as `setting` says, and describes it. */
async function measure(syncer: Syncer, servers: Servers, setting: Setting, sync: (addrs: string[]) => Promise<Synced>): Promise<LinkRun> {
  const opened = setting.links === null ? { links: [], addrs: servers.addrs.slice(0, setting.direct) } : await openLinks(servers.addrs, setting.links)
  let synced: Synced
  try {
    synced = await sync(opened.addrs)
  } finally {
    await Promise.all(opened.links.map((l) => l.close()))
  }
  const MBPerS = synced.verifiedBytes / 1e6 / synced.seconds
  const caps = setting.links?.map((l) => l.down.bytesPerSecond) ?? []
  const capacity = caps.length === 0 || caps.some((c) => c === undefined) ? null : caps.reduce((sum: number, c) => sum + c!, 0) / 1e6
  const carried = opened.links.map((l) => l.carried())
  const carriedMB = (dir: 'up' | 'down'): number | null => (carried.length === 0 ? null : round(carried.reduce((sum, c) => sum + c[dir], 0) / 1e6, 2))
  return {
    syncer,
    scenario: setting.name,
    peers: opened.addrs.length,
    seconds: synced.seconds,
    wallS: round(synced.wallS),
    verifiedMB: round(synced.verifiedBytes / 1e6, 2),
    MBPerS: round(MBPerS, 3),
    capacityMBPerS: capacity,
    ofCapacity: capacity === null ? null : round(MBPerS / capacity, 3),
    linkOfCapacity: capacity === null || carriedMB('down') === null ? null : round(carriedMB('down')! / synced.seconds / capacity, 3),
    ofLoopback: null,
    linkDownMB: carriedMB('down'),
    linkUpMB: carriedMB('up'),
    clientCpuS: synced.clientCpuS,
    ...(synced.cpuUsPerNode === undefined ? {} : { cpuUsPerNode: synced.cpuUsPerNode })
  }
}

/** `dsfg sync` with `args` (the peers and the data directory added), in the shared terms. */
async function runSync<T extends { seconds: number }>(
  args: string[],
  verifiedBytes: (summary: T) => number,
  cpuUsPerNode?: (summary: T) => number
): Promise<Synced> {
  const { summary, wallS, rss } = await runDsfg<T>(['sync', ...args])
  const synced: Synced = { seconds: summary.seconds, verifiedBytes: verifiedBytes(summary), wallS, clientCpuS: rss.at(-1)?.cpuS ?? null }
  if (cpuUsPerNode !== undefined) synced.cpuUsPerNode = cpuUsPerNode(summary)
  return synced
}

/** Every setting for one syncer, against `servers`, each into a fresh client store under `dir`; prints each row as it comes. */
async function measureAll<T extends { seconds: number }>(
  syncer: Syncer,
  dir: string,
  servers: Servers,
  args: string[],
  bytes: (summary: T) => number,
  cpuUsPerNode?: (summary: T) => number
): Promise<LinkRun[]> {
  const runs: LinkRun[] = []
  for (const [i, setting] of SETTINGS.entries()) {
    progress(`${syncer}: ${setting.name}`)
    const target = join(dir, `client-${syncer}-${i}`)
    runs.push(await measure(syncer, servers, setting, (addrs) => runSync<T>(['--data', target, ...peerArgs(addrs), ...args], bytes, cpuUsPerNode)))
  }
  const rate = (name: string): number => runs.find((r) => r.scenario === name)?.MBPerS ?? Number.NaN
  for (const run of runs) {
    run.ofLoopback = round(run.MBPerS / rate(LOOPBACK.name), 3)
    if (run.scenario === ONE_FAST_THREE_SLOW.name || run.scenario === CRAWLER_FIRST.name) run.overFastAlone = round(run.MBPerS / rate(FAST_ALONE.name), 3)
    console.log(JSON.stringify(run))
  }
  return runs
}

/** Trie sync of `keys` account-like keys from SERVERS servers, in every setting. */
export async function measureTrieOverLinks(keys: number): Promise<LinkRun[]> {
  return withTempDir('dsfg-bench-links-trie-', async (dir) => {
    const source = join(dir, 'source')
    progress(`trie: building ${keys} keys`)
    const { root } = await buildAccountTrie(source, SEED, keys)
    const servers = await startServers(source, dir, 'server', SERVERS)
    try {
      return await measureAll('trie', dir, servers, ['--root', toHex(root)], (s: TrieSummary) => s.bytes, (s: TrieSummary) => round((s.cpuSeconds * 1e6) / s.fetched, 1))
    } finally {
      await servers.stop()
    }
  })
}

/** Topic catch-up of `items` items of `itemBytes` from SERVERS servers, in every setting. */
export async function measureTopicOverLinks(items: number, itemBytes: number): Promise<LinkRun[]> {
  return withTempDir('dsfg-bench-links-topic-', async (dir) => {
    const source = join(dir, 'source')
    progress(`topic: building ${items} items of ${itemBytes} B`)
    const { publisher } = await buildTopicSource(source, items, itemBytes)
    const servers = await startServers(source, dir, 'server', SERVERS, ['--topic', TOPIC])
    const verified = (s: TopicSummary): number => {
      if (s.items !== items) throw new Error(`synced ${s.items} items, expected ${items}`)
      return s.fetched * itemBytes
    }
    try {
      return await measureAll('topic', dir, servers, ['--topic', TOPIC, '--publisher', publisher, '--items-only'], verified)
    } finally {
      await servers.stop()
    }
  })
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      keys: { type: 'string' },
      items: { type: 'string' },
      bytes: { type: 'string' },
      syncers: { type: 'string' },
      only: { type: 'string' },
      pin: { type: 'boolean' }
    }
  })
  // --pin: the 4 servers on CPU 0, the client on CPU 1 (Linux, taskset), for a steadier CPU per node.
  if (values.pin === true) Object.assign(pinning, { servers: '0', client: '1' })
  const quick = values.quick === true
  const keys = Number(values.keys ?? (quick ? 5_000 : 100_000))
  const items = Number(values.items ?? (quick ? 1_000 : 20_000))
  const itemBytes = Number(values.bytes ?? 1024)
  const syncers = (values.syncers ?? 'trie,topic').split(',')
  // --only 8 Mbit,fast: just the scenarios whose names contain one of these (the loopback baseline always runs).
  if (values.only !== undefined) {
    const wanted = values.only.split(',')
    const kept = SETTINGS.filter((s) => s === LOOPBACK || wanted.some((w) => s.name.includes(w)))
    SETTINGS.splice(0, SETTINGS.length, ...kept)
  }
  if (syncers.includes('trie')) await measureTrieOverLinks(keys)
  if (syncers.includes('topic')) await measureTopicOverLinks(items, itemBytes)
}
