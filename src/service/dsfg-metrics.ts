import type { Metrics } from '@libp2p/interface'
import type { Status } from '../net/codec.js'
import { peekStatus, requestLabel, statusOutcome } from '../net/request-outcome.js'
import type { FrameAnswer } from '../net/rpc.js'
import type { ReplyBudgetStats } from '../net/reply-budget.js'
import type { OffenceKind } from '../peers/peer-scorer.js'
import type { StateSyncStats } from '../sync/state-syncer.js'
import type { SyncMode } from '../topic/sync/types.js'
import type { CountGroup, VerifiedCounts } from '../util/metrics.js'

/** What the service's gauges read when Prometheus (or any collector) scrapes: nothing is sampled in between. */
export interface DsfgMetricsSources {
  /** The running state syncs' progress. */
  stateSyncs(): StateSyncStats[]
  /** Each open topic: its sync mode, the item number it aims for and our highest stored one (-1 for none). */
  topics(): Promise<{ name: string; mode: SyncMode; target: number; head: number }[]>
  /** The reply budget of what this node serves. */
  replyBudget(): ReplyBudgetStats
}

/**
 * The counters the service and its components increment. Registered once, when the node has a metrics
 * implementation (`createLibp2p({ metrics: prometheusMetrics() })`); the service holds `undefined` otherwise.
 */
export interface DsfgMetrics {
  /** `dsfg_trie_nodes_verified_total`, `dsfg_trie_node_bytes_verified_total`: nodes a state sync hashed and accepted. */
  trieNodes: VerifiedCounts
  /** `dsfg_topic_items_verified_total`, `dsfg_topic_item_bytes_verified_total`: downloaded items checked and stored. */
  topicItems: VerifiedCounts
  /** `dsfg_requests_sent_total{request="<protocol>:<outcome>"}` */
  sent: CountGroup
  /** `dsfg_requests_served_total{request="<protocol>:<outcome>"}` */
  served: CountGroup
  /** `dsfg_peer_offences_total{offence}`: every offence the peer ledger weighed. */
  offences: CountGroup<OffenceKind>
  /** `dsfg_peers_disconnected_total`: peers whose score reached the threshold. */
  disconnects: VerifiedCounts['count']
}

const MODES: readonly SyncMode[] = ['unsynced', 'syncing', 'synced']

/**
 * A served protocol's answer function for `frameHandler`, each reply counted in `served` by its status (read
 * from the reply's first bytes, not decoded); `answer` itself without metrics. Malformed requests are logged
 * where they are decoded, and an answer that throws by the frame handler's `onError`.
 */
export function countServed(
  served: CountGroup | undefined,
  protocol: string,
  answer: (frame: Uint8Array, peer: string, maxReplyBytes?: number) => Promise<Uint8Array>
): FrameAnswer {
  if (served === undefined) return (frame, peer, maxReplyBytes) => answer(frame, peer.toString(), maxReplyBytes)
  // One label string per status, made once.
  const labels = new Map<Status | undefined, string>()
  const label = (status: Status | undefined): string => {
    let name = labels.get(status)
    if (name === undefined) {
      name = requestLabel(protocol, status === undefined ? 'failed' : statusOutcome(status))
      labels.set(status, name)
    }
    return name
  }
  return async (frame, peer, maxReplyBytes) => {
    const reply = await answer(frame, peer.toString(), maxReplyBytes)
    served.increment({ [label(peekStatus(reply))]: true })
    return reply
  }
}

/** Registers the DSFG metrics with `metrics`; `undefined` (and nothing registered) without one. */
export function registerDsfgMetrics(metrics: Metrics | undefined, sources: DsfgMetricsSources): DsfgMetrics | undefined {
  if (metrics === undefined) return undefined
  metrics.registerMetric('dsfg_state_syncs_running', {
    help: 'State (trie) syncs running, checkpoint syncs of topics included',
    calculate: () => sources.stateSyncs().length
  })
  metrics.registerMetric('dsfg_trie_nodes_pending', {
    help: 'Trie nodes the running state syncs have scheduled and not yet stored',
    calculate: () => sources.stateSyncs().reduce((sum, s) => sum + s.pending, 0)
  })
  metrics.registerMetricGroup('dsfg_topics', {
    label: 'mode',
    help: 'Open topics by sync mode (unsynced, syncing, synced)',
    calculate: async () => {
      const counts: Record<string, number> = Object.fromEntries(MODES.map((m) => [m, 0]))
      for (const topic of await sources.topics()) counts[topic.mode] = (counts[topic.mode] ?? 0) + 1
      return counts
    }
  })
  metrics.registerMetricGroup('dsfg_reply_budget', {
    label: 'stat',
    help:
      'Reply bytes held now (in_flight_bytes) and at most (peak_bytes), replies refused RATE_LIMITED for want of room (refused) or given up for a peer holding less (evicted), and the peers and hosts holding part of it',
    calculate: () => {
      const { inFlight, peak, refused, evicted, peers, hosts } = sources.replyBudget()
      return { in_flight_bytes: inFlight, peak_bytes: peak, refused, evicted, peers, hosts }
    }
  })
  metrics.registerMetricGroup('dsfg_topic_head', {
    label: 'topic',
    help: 'Highest item number stored, by topic (-1 for none)',
    calculate: async () => Object.fromEntries((await sources.topics()).map((t) => [t.name, t.head]))
  })
  metrics.registerMetricGroup('dsfg_topic_target', {
    label: 'topic',
    help: 'Item number the topic sync aims for, by topic (-1 while no peer or checkpoint names one)',
    calculate: async () => Object.fromEntries((await sources.topics()).map((t) => [t.name, t.target]))
  })
  return {
    trieNodes: {
      count: metrics.registerCounter('dsfg_trie_nodes_verified_total', { help: 'Trie nodes a state sync received, hashed and accepted' }),
      bytes: metrics.registerCounter('dsfg_trie_node_bytes_verified_total', { help: 'Bytes of those trie nodes' })
    },
    topicItems: {
      count: metrics.registerCounter('dsfg_topic_items_verified_total', {
        help: 'Downloaded topic items checked (range proof or content hashes) and handed to the store'
      }),
      bytes: metrics.registerCounter('dsfg_topic_item_bytes_verified_total', { help: 'Bytes of those topic items' })
    },
    sent: metrics.registerCounterGroup('dsfg_requests_sent_total', {
      label: 'request',
      help: 'Requests sent to peers, by protocol and outcome (protocol:outcome)'
    }),
    served: metrics.registerCounterGroup('dsfg_requests_served_total', {
      label: 'request',
      help: 'Requests answered, by protocol and reply status, and request frames refused (protocol:outcome)'
    }),
    offences: metrics.registerCounterGroup('dsfg_peer_offences_total', {
      label: 'offence',
      help: 'Peer offences the peer ledger weighed, by kind'
    }),
    disconnects: metrics.registerCounter('dsfg_peers_disconnected_total', {
      help: 'Peers disconnected because their penalty score reached the threshold'
    })
  }
}
