import type { PeerInfo } from './types.js'

// reference: Lodestar@6de07362 sync/range/utils/peerBalancer.ts (bestPeerToRetryBatch: avoid peers that failed
// the batch, then busy ones); Pocket/Soma eligibility rule from DESIGN.md section 2.

/** Whether `peer` claims every item of `[from, to]`: only then is it asked, and only then can it be blamed. */
export function isEligible(peer: PeerInfo, from: number, to: number): boolean {
  return peer.lowest <= from && peer.head >= to
}

/**
 * Keeps the number of requests in flight per peer and picks the peer for a range: an eligible peer below the
 * concurrency cap, preferring one that has failed this batch fewer times, then the least busy one, then the
 * smallest id so that the choice is deterministic.
 */
export class PeerBalancer {
  private readonly maxInFlightPerPeer: number
  private readonly active = new Map<string, number>()

  constructor(maxInFlightPerPeer: number) {
    this.maxInFlightPerPeer = maxInFlightPerPeer
  }

  /** Requests in flight at `peer`. */
  activeRequests(peer: string): number {
    return this.active.get(peer) ?? 0
  }

  acquire(peer: string): void {
    this.active.set(peer, this.activeRequests(peer) + 1)
  }

  release(peer: string): void {
    const n = this.activeRequests(peer) - 1
    if (n > 0) this.active.set(peer, n)
    else this.active.delete(peer)
  }

  /**
   * The best peer for `[from, to]` among `peers`, or undefined when no eligible peer has a free slot.
   * `failures(peer)` is how often the batch failed at that peer; `limit(peer)`, if given, lowers a peer's cap
   * below `maxInFlightPerPeer` (never under one request).
   */
  bestPeer(
    peers: readonly PeerInfo[],
    from: number,
    to: number,
    failures: (peer: string) => number,
    limit?: (peer: string) => number
  ): string | undefined {
    let best: { id: string; failures: number; active: number } | undefined
    for (const peer of peers) {
      if (!isEligible(peer, from, to)) continue
      const active = this.activeRequests(peer.id)
      if (active >= this.maxInFlightPerPeer) continue
      if (limit !== undefined && active >= Math.max(1, limit(peer.id))) continue
      const candidate = { id: peer.id, failures: failures(peer.id), active }
      if (best === undefined || better(candidate, best)) best = candidate
    }
    return best?.id
  }
}

function better(
  a: { id: string; failures: number; active: number },
  b: { id: string; failures: number; active: number }
): boolean {
  if (a.failures !== b.failures) return a.failures < b.failures
  if (a.active !== b.active) return a.active < b.active
  return a.id < b.id
}

/**
 * Cleans `io.peers()` output: drops malformed entries and repeated ids (first wins). The peer table is local
 * input, but a bad entry must not make the queue ask for nonsense.
 */
export function sanitizePeers(peers: readonly PeerInfo[]): PeerInfo[] {
  const seen = new Set<string>()
  const out: PeerInfo[] = []
  for (const peer of peers) {
    if (typeof peer?.id !== 'string' || seen.has(peer.id)) continue
    if (!Number.isSafeInteger(peer.lowest) || !Number.isSafeInteger(peer.head)) continue
    seen.add(peer.id)
    out.push(peer)
  }
  return out
}
