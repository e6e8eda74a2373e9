import type { SubscriptionChangeData } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import { DsfgError } from '../../errors.js'
import { dialWithRetry } from '../../node/dial.js'
import { sleep } from '../../util/abort.js'
import { checkpointsTopic } from '../../topic/gossip.js'
import { toHex } from '../../util/hex.js'
import { untilAborted } from '../signals.js'
import type { RoleContext } from './demo-node.js'
import { type DemoCommand, demoItem, demoStreams } from './demo-protocol.js'

/** Items per `appendMany` while the publisher generates its history: one store batch each, bounded memory. */
const APPEND_CHUNK = 4096

/** The publisher's live loop wakes this often to publish what is due. */
const PUBLISH_TICK_MS = 20

/** Most live items published in one tick: a publisher that fell behind catches up without starving the rest. */
const MAX_PUBLISH_BURST = 64

/** How often a follower reports its head (when it changed). */
const HEAD_REPORT_MS = 250

/** How often the joiner reports its trie sync's counters. */
const TRIE_REPORT_MS = 1000


/** A demo process could not do its part. */
export class DemoNodeError extends DsfgError {
  static override readonly code: string = 'ERR_DEMO_NODE'
}

/**
 * The publisher: appends a generated history of `items` items straight to its store and checkpoints it, then
 * publishes `rate` live items a second (each gossiped) and a checkpoint every `checkpointMs` (gossiped,
 * signed by this node), until `{"cmd":"stop-publishing"}`: then it checkpoints its final head and reports it.
 */
export async function runPublisher(ctx: RoleContext): Promise<void> {
  const { topic, signal } = ctx
  const store = ctx.node.services.dsfg.topicStore
  const streams = demoStreams(ctx.seed)
  const started = performance.now()
  for (let done = 0; done < ctx.items; ) {
    const count = Math.min(APPEND_CHUNK, ctx.items - done)
    await store.appendMany(topic.name, Array.from({ length: count }, () => demoItem(streams.history)), { signal })
    done += count
  }
  const generated = await topic.checkpoint()
  if (generated === null) throw new DemoNodeError('the publisher has no items to checkpoint')
  await ctx.emit({
    event: 'generated',
    head: generated.number,
    root: toHex(generated.root),
    seconds: (performance.now() - started) / 1000
  })

  const publishing = new AbortController()
  ctx.onCommand((cmd: DemoCommand) => {
    if (cmd.cmd === 'stop-publishing') publishing.abort()
  })
  const live = AbortSignal.any([signal, publishing.signal])
  // A checkpoint gossiped before a peer subscribed never reaches it: greet each new subscriber with one at
  // once rather than let it sync for up to a checkpoint interval without knowing what to trust.
  let greet = false
  const checkpoints = checkpointsTopic(topic.name)
  const onSubscription = (e: CustomEvent<SubscriptionChangeData>): void => {
    if (e.detail.subscriptions.some((sub) => sub.subscribe && sub.topic === checkpoints)) greet = true
  }
  const pubsub = ctx.node.services.pubsub
  pubsub.addEventListener('subscription-change', onSubscription)
  const liveStarted = performance.now()
  let lastCheckpoint = liveStarted
  let published = 0
  let checkpointCount = 1
  // One loop for items and checkpoints: a checkpoint then always follows the items it covers on the wire.
  try {
    while (!live.aborted) {
      const due = Math.floor(((performance.now() - liveStarted) * ctx.rate) / 1000) - published
      for (let i = 0; i < Math.min(due, MAX_PUBLISH_BURST) && !live.aborted; i++) {
        await topic.publish(demoItem(streams.live))
        published++
      }
      if (greet || performance.now() - lastCheckpoint >= ctx.checkpointMs) {
        greet = false
        await topic.checkpoint()
        checkpointCount++
        lastCheckpoint = performance.now()
      }
      // Ends early (rejecting) when publishing stops.
      await sleep(PUBLISH_TICK_MS, { signal: live }).catch(() => undefined)
    }
  } finally {
    pubsub.removeEventListener('subscription-change', onSubscription)
  }
  if (signal.aborted) return
  const final = await topic.checkpoint()
  checkpointCount++
  await ctx.emit({
    event: 'published',
    head: final!.number,
    root: toHex(final!.root),
    liveItems: published,
    checkpoints: checkpointCount
  })
  await untilAborted(signal)
}

/**
 * A server or the joiner: follows the topic from its peers (the publisher's checkpoints decide what to trust)
 * and serves it. Reports its head as it moves and `synced` when first caught up; the joiner also reports its
 * checkpoints, its checkpoint sync and penalties, and answers `prove`.
 */
export async function runFollower(ctx: RoleContext, joiner: boolean): Promise<void> {
  const { node, topic, signal } = ctx
  const started = performance.now()
  let reported = { head: -2, mode: '' }
  const reportHead = async (): Promise<void> => {
    const head = await topic.head()
    if (head === reported.head && topic.mode === reported.mode) return
    reported = { head, mode: topic.mode }
    await ctx.emit({ event: 'head', ...reported })
  }
  const headTimer = setInterval(() => void reportHead().catch(() => undefined), HEAD_REPORT_MS)
  let synced = false
  topic.addEventListener('sync:complete', (e) => {
    if (synced) return
    synced = true
    void ctx.emit({ event: 'synced', head: e.detail.head, seconds: (performance.now() - started) / 1000 })
  })
  if (joiner) reportJoinerEvents(ctx)
  ctx.onCommand((cmd) => {
    if (cmd.cmd === 'prove') {
      void prove(ctx, cmd.head, cmd.items).catch((err: unknown) => {
        ctx.io.stderr.write(`dsfg demo-node: prove failed: ${message(err)}\n`)
      })
    }
  })
  // Following first subscribes to the topic's gossip, so the subscription goes out as each peer connects.
  // With the publisher's checkpoint far ahead, following is a checkpoint sync (servers usually start before
  // the history exists and download it; the late joiner trie-syncs it).
  const following = topic.follow({ signal })
  try {
    const dialled = await Promise.allSettled(ctx.peers.map((peer) => dialWithRetry((a, o) => node.dial(a, o), multiaddr(peer), { signal })))
    // Told to stop while dialling: not a failure to report.
    if (signal.aborted) return await following
    dialled.forEach((result, i) => {
      if (result.status === 'rejected') ctx.io.stderr.write(`dsfg demo-node: could not dial ${ctx.peers[i]}: ${message(result.reason)}\n`)
    })
    if (ctx.peers.length > 0 && dialled.every((r) => r.status === 'rejected')) throw new DemoNodeError('could not dial any peer')
    await following
  } finally {
    clearInterval(headTimer)
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The joiner's view of its sync, for the demo's log and summary. */
function reportJoinerEvents(ctx: RoleContext): void {
  const { topic } = ctx
  topic.addEventListener('checkpoint', (e) => {
    void ctx.emit({ event: 'checkpoint', number: e.detail.checkpoint.number, status: e.detail.status })
  })
  topic.events.addEventListener('trie:started', (e) => void ctx.emit({ event: 'trie', what: 'started', number: e.detail.number }))
  topic.events.addEventListener('trie:retarget', (e) => void ctx.emit({ event: 'trie', what: 'retarget', number: e.detail.number }))
  topic.events.addEventListener('trie:adopted', (e) => void ctx.emit({ event: 'trie', what: 'adopted', number: e.detail.number }))
  topic.events.addEventListener('trie:failed', (e) => {
    void ctx.emit({ event: 'trie', what: 'failed', number: e.detail.number, error: message(e.detail.error) })
  })
  topic.addEventListener('peer:penalised', (e) => void ctx.emit({ event: 'penalised', ...e.detail }))
  let lastTrieReport = 0
  let lastTrie: { checkpoint: number; nodes: number; bytes: number; pending: number } | undefined
  topic.addEventListener('sync:progress', (e) => {
    const trie = e.detail.trie
    if (trie === undefined) return
    lastTrie = { checkpoint: trie.checkpoint.number, nodes: trie.nodes, bytes: trie.bytes, pending: trie.pending }
    if (performance.now() - lastTrieReport < TRIE_REPORT_MS) return
    lastTrieReport = performance.now()
    void ctx.emit({ event: 'trie-progress', ...lastTrie })
  })
  // The counters at the end of the trie phase, for the summary (progress reports are throttled).
  topic.events.addEventListener('trie:adopted', () => {
    if (lastTrie !== undefined) void ctx.emit({ event: 'trie-progress', ...lastTrie })
  })
}

/** Waits for our head to reach `head`, then proves `items` against our root and reports the proofs. */
async function prove(ctx: RoleContext, head: number, items: readonly number[]): Promise<void> {
  const { topic, signal } = ctx
  for await (const _ of topic.items({ from: head, signal })) break
  // The publisher has stopped, but read the head on both sides of the root to be sure they belong together.
  for (;;) {
    const before = await topic.head()
    const root = await topic.root()
    if ((await topic.head()) !== before) continue
    const proofs: { n: number; proof: string[] }[] = []
    for (const n of items) proofs.push({ n, proof: (await topic.prove(n, root)).map(toHex) })
    await ctx.emit({ event: 'proofs', head: before, root: toHex(root), proofs })
    return
  }
}
