import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { PEER_TAG_WRITE_INTERVAL_MS } from '../constants.js'
import type { Clock } from '../util/clock.js'
import type { PeerScorer } from './peer-scorer.js'

/** The peer store tag that shows a peer's score in the ledger. */
export const PENALTY_TAG = 'dsfg-penalty'

/** The largest value libp2p accepts for a peer store tag. */
const MAX_TAG_VALUE = 100

/** A score as the peer store's tag shows it: rounded, and within libp2p's range for tag values. */
export function tagValue(score: number): number {
  return Math.min(MAX_TAG_VALUE, Math.round(score))
}

export interface PenaltyTagsInit {
  peerStore: Pick<PeerStore, 'merge'>
  connectionManager: Pick<ConnectionManager, 'closeConnections'>
  /** When a peer's score will have decayed away: its tag expires then. */
  scorer: Pick<PeerScorer, 'clearsAt'>
  clock: Clock
  log: Logger
  /** Least time between two writes of one peer's tag. @default PEER_TAG_WRITE_INTERVAL_MS (1 s) */
  intervalMs?: number
}

interface Pending {
  timer: unknown
  /** The newest value to write when the interval ends, if it changed since the last write. */
  value?: number
}

/**
 * Shows the ledger's scores in the peer store's `dsfg-penalty` tag and closes the connections of a peer past
 * the threshold. A peer's tag is written at once, then at most once per interval with the newest value: a
 * write per offence made refusing a flood dear (profiled, a `serve` refusing a flood of 8,192-hash requests
 * spent 92 ms of 360 in the peer store and the peer id parsing around it). A disconnect is never delayed.
 */
export class PenaltyTags {
  private readonly init: PenaltyTagsInit
  private readonly intervalMs: number
  private readonly pending = new Map<string, Pending>()

  constructor(init: PenaltyTagsInit) {
    this.init = init
    this.intervalMs = init.intervalMs ?? PEER_TAG_WRITE_INTERVAL_MS
  }

  /** Shows `value` as `peer`'s tag, and disconnects it if `disconnect`. */
  set(peer: string, value: number, disconnect: boolean): void {
    const pending = this.pending.get(peer)
    if (disconnect) {
      // Written now, with the newest value: nothing older may follow it.
      if (pending !== undefined) pending.value = undefined
      void this.write(peer, value, true)
      return
    }
    if (pending !== undefined) {
      pending.value = value
      return
    }
    void this.write(peer, value, false)
    const next: Pending = {
      timer: this.init.clock.setTimeout(() => {
        this.pending.delete(peer)
        if (next.value !== undefined) this.set(peer, next.value, false)
      }, this.intervalMs)
    }
    this.pending.set(peer, next)
  }

  /** Drops the writes still waiting for their interval. */
  stop(): void {
    for (const pending of this.pending.values()) this.init.clock.clearTimeout(pending.timer)
    this.pending.clear()
  }

  private async write(peer: string, value: number, disconnect: boolean): Promise<void> {
    try {
      const id: PeerId = peerIdFromString(peer)
      const clearsAt = this.init.scorer.clearsAt(peer)
      const ttl = clearsAt === undefined ? undefined : Math.max(1, clearsAt - this.init.clock.now())
      await this.init.peerStore.merge(id, { tags: { [PENALTY_TAG]: value > 0 ? { value, ttl } : undefined } })
      if (disconnect) await this.init.connectionManager.closeConnections(id)
    } catch (err) {
      this.init.log.error('could not penalise %s: %e', peer, err)
    }
  }
}
