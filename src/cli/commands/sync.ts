import { DsfgError, UsageError } from '../../errors.js'
import type { DsfgLibp2p } from '../../node/create-node.js'
import type { KVStore } from '../../store/kv-store.js'
import { equalBytes } from '../../util/bytes.js'
import { openStore } from '../../store/open-store.js'
import type { TopicSyncProgress } from '../../topic/topic-handle.js'
import { verifyTrie } from '../../trie/walk.js'
import { toHex } from '../../util/hex.js'
import { type CliIo, defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import {
  hashFlag,
  multiaddrFlag,
  numberFlag,
  NODE_DATA_DESCRIPTION,
  TRUST_OPTIONS,
  type TopicTrust,
  topicFlag,
  trustFlags,
  trustGiven
} from '../flags.js'
import { writeJson } from '../io.js'
import { nodeKeyFor } from '../node-key.js'
import { topicTrust } from '../own-topic.js'
import { type ProgressSnapshot, ProgressReporter } from '../progress.js'
import { terminationSignal } from '../signals.js'
import { stuckReason, TopicProgressClock } from '../topic-watchdog.js'

/**
 * How long `sync` waits (by default; `--wait`) for dialled peers that serve what it syncs, and with `--publisher`
 * for a checkpoint the publisher signed; also how long a root sync goes on with no peer that answers, and a topic
 * sync without progress (no item or trie node verified, no higher target).
 */
const PEER_WAIT_MS = 15_000

/** How often `sync` checks that some peer still answers (`--root`) or that the sync progresses (`--topic`). */
const WATCHDOG_PERIOD_MS = 250

/** The sync could not be completed and verified. */
export class SyncFailedError extends DsfgError {
  static override readonly code: string = 'ERR_SYNC_FAILED'
}

export const syncCommand = defineCommand({
  name: 'sync',
  summary: SUMMARIES.sync,
  description: [
    'Dials every --peer (a multiaddr, best ending in /p2p/<peer id>: without it, whichever peer answers there is',
    'taken). A failed dial is tried 4 times; a peer that takes the connection but not the encryption handshake is',
    'taken for a busy server and dialled again for up to 90 s, whatever --wait says. Progress goes to stderr: a line redrawn on a terminal,',
    'JSON lines otherwise: with --root nodes, bytes, rate, pending and peers (no percentage: a trie\'s size is',
    'known only once it is all there); with --topic items stored of the target, with a percentage until the',
    'target moves (peers report newer items: the percentage would go back, so it is left out from then on), and the',
    'nodes and bytes of a checkpoint\'s topic trie while it is trie-synced. Exits 0 only when the result is verified.',
    '--root 0x…: downloads the trie at that root from peers serving /dsfg/nodes/1.0.0, checking every node',
    '  against its hash, then walks the whole trie in the store once more and prints',
    '  {"root","nodes","fetched","bytes","seconds","verifySeconds","cpuSeconds","rate","peers","peakRssMB","verified":true}',
    '  (seconds: the sync; verifySeconds: the final walk; cpuSeconds: this process\'s CPU during the sync). Stored nodes are complete subtries, so an',
    '  interrupted sync resumes where it stopped.',
    '--topic T: downloads the items beyond our head in numbered batches. With --publisher PEERID: up to its',
    '  newest signed checkpoint, which any dialled peer may hand on, every batch proven against its root (no',
    '  such checkpoint from any peer within --wait seconds is an error). Else up to the highest head at least --quorum N',
    '  peers report (default 1; fewer peers after that wait is an error), each batch checked against content',
    '  hashes N peers agree on, and our last item against the head hash of a peer at that head (see the',
    '  README\'s trust model). Prints {"topic","trust","checkpoint","head","items","fetched","root","seconds",',
    '  "itemsPerSecond","peers","verified":true}, trust being "publisher" or "quorum:N". A topic DIR published',
    '  (`dsfg publish`) trusts only the key it was published with: with neither flag that is its publisher, and other',
    '  trust is refused.',
    '  A topic sync that verifies nothing (no item, no trie node, no higher target) for --wait seconds exits 1',
    '  saying why: no quorum of peers agrees, peers answer busy (RATE_LIMITED), or no peer answers with items that verify.',
    'The peer id comes from the key in DIR/node.key (created on first use).'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: NODE_DATA_DESCRIPTION },
    peer: { type: 'string', value: 'MADDR', multiple: true, required: true, description: 'peer to sync from (repeatable)' },
    root: { type: 'string', value: '0x…', description: 'trie root hash to sync (32 bytes)' },
    topic: { type: 'string', value: 'T', description: 'topic to catch up on' },
    'items-only': {
      type: 'boolean',
      description: 'with --topic: download every item in numbered batches, never trie-syncing a checkpoint\'s topic trie'
    },
    ...TRUST_OPTIONS,
    wait: {
      type: 'string',
      value: 'SECONDS',
      description: `how long to wait, once a peer is connected, for peers that serve the root or topic, for the publisher's signed checkpoint, and (--topic) for progress: nothing verified for this long is an error (default ${PEER_WAIT_MS / 1000}; dialling has its own bounds, above)`
    }
  },
  async run({ options }, io) {
    if ((options.root === undefined) === (options.topic === undefined)) {
      throw new UsageError('give exactly one of --root and --topic')
    }
    if (options.root !== undefined && (trustGiven(options) || options['items-only'] === true)) {
      throw new UsageError('--publisher, --quorum and --items-only apply to --topic only')
    }
    const root = options.root === undefined ? undefined : hashFlag(options.root, '--root')
    if (options.topic !== undefined) topicFlag(options.topic)
    const trust = trustFlags(options)
    const checkpointSync = options['items-only'] !== true
    const peers = options.peer.map((p) => multiaddrFlag(p))
    const waitMs = (numberFlag(options.wait, '--wait', 1) ?? PEER_WAIT_MS / 1000) * 1000
    const stop = terminationSignal()
    const store = await openStore(options.data)
    try {
      // libp2p loads only now that the options are checked, as in `dsfg serve`.
      const [{ createDsfgNode }, { dialWithRetry }] = await Promise.all([import('../../node/create-node.js'), import('../../node/dial.js')])
      const privateKey = await nodeKeyFor(options.data)
      // A topic this node published is synced under its own signatures only (see `topicTrust`).
      const decided = options.topic === undefined ? undefined : await topicTrust(store, options.topic, { trust, given: trustGiven(options) }, privateKey, options.data, 'sync')
      const topic = options.topic === undefined || decided === undefined ? undefined : { name: options.topic, checkpointSync, ...decided.trust }
      const topics = topic === undefined ? [] : [topic]
      const node = await createDsfgNode({ store, topics, privateKey })
      // Ends the dials still going when the sync is over.
      const dialling = new AbortController()
      try {
        // Every peer is dialled at once, a failed dial again a few times (a server busy with a burst of joiners
        // may refuse a connection now and take it a moment later). The sync starts as soon as one peer answers,
        // not when the slowest dial gives up (a peer that never answers held it up for half a minute); the
        // others join as they connect.
        const signal = AbortSignal.any([stop.signal, dialling.signal])
        const dials = peers.map((p) =>
          dialWithRetry((a, o) => node.dial(a, o), p, { signal, log: node.logger.forComponent('dsfg:dial') }).catch((err: unknown) => {
            if (!signal.aborted) io.stderr.write(`dsfg: could not dial ${p.toString()}: ${String(err)}\n`)
            throw err
          })
        )
        for (const dial of dials) dial.catch(() => undefined)
        await Promise.any(dials).catch(() => {
          // Stopped while dialling: the dials failed because of the stop, which is what to report (exit 130/143).
          if (stop.signal.aborted) throw stop.signal.reason
          throw new SyncFailedError('could not reach any peer')
        })
        let summary: Record<string, unknown>
        try {
          summary =
            root !== undefined ? await syncRoot(node, store, root, { signal: stop.signal, waitMs }, io)
              : await syncTopic(node, topic!, { signal: stop.signal, waitMs, own: decided?.own === true }, io)
        } catch (err) {
          // A stopped sync fails with whatever its parts make of the abort (the state syncer's own AbortError,
          // say): the cause to report is the interruption.
          if (stop.signal.aborted) throw stop.signal.reason
          throw err
        }
        await writeJson(io.stdout, summary)
      } finally {
        dialling.abort()
        await node.stop()
      }
    } finally {
      stop.dispose()
      await store.close()
    }
  }
})

async function syncRoot(
  node: DsfgLibp2p,
  store: KVStore,
  root: Uint8Array,
  { signal, waitMs }: { signal: AbortSignal; waitMs: number },
  io: CliIo
): Promise<Record<string, unknown>> {
  const progress = new ProgressReporter(io.stderr)
  const started = Date.now()
  const cpuStarted = process.cpuUsage()
  const noPeers = new AbortController()
  const handle = node.services.dsfg.startStateSync(root, { signal: AbortSignal.any([signal, noPeers.signal]) })
  // No total and no percentage: how many nodes a trie has is only known once it is all downloaded (pending
  // is what is asked for now, not what is left).
  handle.events.addEventListener('progress', (e) => {
    const { nodes, bytes, committed, pending, peers } = e.detail
    // Reports before the first verified node (a peer answering busy) show nothing, and would precede a give-up
    // line that must stand alone.
    if (nodes === 0) return
    // stored: written to the store with their whole subtries, so a killed sync resumes from them.
    progress.update({ phase: 'trie', unit: 'nodes', done: nodes, bytes, counts: { stored: committed, pending, peers } })
  })
  // Checked again and again, not once: peers may all leave, be cut off or fall silent long after the start.
  // The library keeps probing silent peers for as long as its caller waits; the command waits --wait seconds
  // without a peer that answers (connected peers that accept requests and never reply count as none).
  // Besides, peers that answer only busy (RATE_LIMITED) end the sync after --wait seconds without a verified
  // node, as `sync --topic` does: a busy peer is never counted stalled.
  let lastUsable = Date.now()
  let lastProgress = Date.now()
  let nodesSeen = 0
  let busySeen = false
  let giveUp = ''
  const watchdog = setInterval(
    () => {
      const stats = handle.stats()
      const now = Date.now()
      if (stats.nodes > nodesSeen) {
        nodesSeen = stats.nodes
        lastProgress = now
        busySeen = false
      }
      busySeen ||= stats.busy > 0
      if (stats.peers > 0) lastUsable = now
      const seconds = waitMs / 1000
      if (stats.peers === 0 && now - lastUsable >= waitMs) {
        const connected = node.services.dsfg.nodePeers().length
        giveUp =
          connected === 0
            ? 'no connected peer serves /dsfg/nodes/1.0.0 any more'
            : `no peer answered /dsfg/nodes/1.0.0 requests for ${seconds} s (${connected} connected, all stalled)`
        noPeers.abort()
      } else if (busySeen && now - lastProgress >= waitMs) {
        giveUp = `nothing verified for ${seconds} s: the peers serving /dsfg/nodes/1.0.0 answered busy (RATE_LIMITED)`
        noPeers.abort()
      }
    },
    Math.min(waitMs, WATCHDOG_PERIOD_MS)
  )
  let result: Awaited<typeof handle.done>
  try {
    result = await handle.done
  } catch (err) {
    if (noPeers.signal.aborted) throw new SyncFailedError(giveUp, { cause: err })
    throw err
  } finally {
    clearInterval(watchdog)
    progress.finish()
  }
  const syncSeconds = (Date.now() - started) / 1000
  const cpu = process.cpuUsage(cpuStarted)
  const verifyStarted = Date.now()
  // Not `checkTrieComplete`: its record of every node made this walk the peak of the whole process's memory.
  const check = await verifyTrie(store, root, { signal })
  if (!check.complete) throw new SyncFailedError(`sync ended but ${check.missingCount} nodes are missing`)
  const verifySeconds = (Date.now() - verifyStarted) / 1000
  return {
    root: toHex(root),
    nodes: check.nodes,
    fetched: result.nodes,
    bytes: result.bytes,
    seconds: Number(syncSeconds.toFixed(3)),
    verifySeconds: Number(verifySeconds.toFixed(3)),
    cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
    rate: Math.round(result.nodes / Math.max(syncSeconds, 0.001)),
    peers: node.services.dsfg.nodePeers().length,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    verified: true
  }
}

async function syncTopic(
  node: DsfgLibp2p,
  config: { readonly name: string } & TopicTrust,
  { signal, waitMs, own }: { signal: AbortSignal; waitMs: number; own: boolean },
  io: CliIo
): Promise<Record<string, unknown>> {
  const name = config.name
  const topic = node.services.dsfg.topic(config)
  const before = await topic.head()
  const started = Date.now()
  // Without a publisher the target waits for a quorum of peers: fewer would leave the sync waiting for ever.
  const needed = 'quorum' in config ? config.quorum : 1
  const trust = 'publisher' in config ? { publisher: config.publisher.toString() } : { quorum: config.quorum }
  // One watchdog over the whole sync, not only the wait for peers: the library waits for as long as its caller
  // does (for a quorum that never agrees, for peers that never answer or only ever answer busy), so the command
  // gives up after --wait seconds without progress, saying why (issue 14: a quorum of 2 beside a forger ran
  // until killed, silently).
  const clock = new TopicProgressClock(before, started)
  const stuck = new AbortController()
  let everServed = false
  let giveUp = ''
  const watchdog = setInterval(
    () => {
      const now = Date.now()
      const states = topic.peerStates()
      if (states.size > 0) everServed = true
      clock.targetIs(topic.target, now)
      const idleMs = clock.idleMs(now)
      if (idleMs < waitMs || stuck.signal.aborted) return
      giveUp = stuckReason({
        topic: name,
        trust,
        states,
        everServed,
        checkpoint: topic.checkpointReceived !== undefined,
        busy: clock.busy,
        idleMs
      })
      stuck.abort()
    },
    Math.min(waitMs, WATCHDOG_PERIOD_MS)
  )
  const progress = new ProgressReporter(io.stderr)
  topic.addEventListener('sync:progress', (e) => {
    clock.report(e.detail, Date.now())
    progress.update(topicProgress(e.detail))
  })
  topic.events.addEventListener('peer:busy', () => clock.refused(Date.now()))
  for (const ended of ['trie:adopted', 'trie:failed'] as const) topic.events.addEventListener(ended, () => clock.adoptionEnded(Date.now()))
  const failure = (): Error => new SyncFailedError(giveUp)
  let head: number
  try {
    // Wait for enough peers' states before deciding we are synced with nobody.
    await pollUntil(() => topic.peerStates().size >= needed, stuck.signal, signal, failure)
    // With a publisher only its signed checkpoint sets the target: without one there is nothing to sync to, and
    // peers that cannot show one (liars, or servers that never had it) are no reason to claim success.
    // A topic published from this directory needs none from peers: its store holds its own record, which the
    // sync loads itself.
    if ('publisher' in config && !own) await pollUntil(() => topic.checkpointReceived !== undefined, stuck.signal, signal, failure)
    head = await topic.syncOnce({ signal: AbortSignal.any([signal, stuck.signal]) }).catch((err: unknown) => {
      if (stuck.signal.aborted && !signal.aborted) throw new SyncFailedError(giveUp, { cause: err })
      throw err
    })
  } finally {
    clearInterval(watchdog)
    progress.finish()
  }
  const seconds = (Date.now() - started) / 1000
  const state = await topic.state()
  const checkpoint = topic.checkpointReceived
  if ('publisher' in config) {
    // syncOnce ends once our items rebuild to the newest signed root (or its trie was adopted).
    if (state === null || checkpoint === undefined || head < checkpoint.number) {
      throw new SyncFailedError(`topic ${JSON.stringify(name)}: our head ${head} is short of the signed checkpoint`)
    }
  } else {
    const agreeing = [...topic.peerStates().values()].filter(
      (s) => state !== null && s.head === head && equalBytes(s.headHash, state.headHash)
    )
    if (state === null || agreeing.length === 0) {
      throw new SyncFailedError(`topic ${JSON.stringify(name)}: no peer confirms our head ${head}`)
    }
  }
  return {
    topic: name,
    trust: topic.trust,
    ...(checkpoint === undefined ? {} : { checkpoint: { number: checkpoint.number, root: toHex(checkpoint.root) } }),
    head,
    items: head + 1,
    fetched: head - before,
    root: toHex(await topic.root()),
    seconds: Number(seconds.toFixed(3)),
    itemsPerSecond: Math.round((head - before) / Math.max(seconds, 0.001)),
    peers: topic.peerStates().size,
    verified: true
  }
}

/**
 * A topic sync's progress: items stored of the target (peers' head, or the checkpoint's), both known, so with
 * a percentage until the target moves (the reporter then leaves it out); while a checkpoint's topic trie is
 * trie-synced, its nodes and bytes (no total, see syncRoot).
 */
export function topicProgress(p: TopicSyncProgress): ProgressSnapshot {
  if (p.trie !== undefined) {
    const { nodes, bytes, pending, checkpoint } = p.trie
    return { phase: 'trie', unit: 'nodes', done: nodes, bytes, counts: { pending, checkpoint: checkpoint.number } }
  }
  return { phase: 'items', unit: 'items', done: p.head + 1, total: p.target + 1 }
}

/** Checks `ready` every 20 ms until it holds; `failure()` once `giveUp` aborts first, the caller's abort on `signal`. */
async function pollUntil(ready: () => boolean, giveUp: AbortSignal, signal: AbortSignal, failure: () => Error): Promise<void> {
  while (!ready()) {
    if (giveUp.aborted) throw failure()
    signal.throwIfAborted()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
