import { describe, expect, it } from 'vitest'
import { isEligible, PeerBalancer, type PeerInfo } from '../../src/fsm/index.js'
import { SeededRandom } from '../helpers/random.js'

// Ported from Lodestar peerBalancer.test bestPeerToRetryBatch (reference section 4(d), 46): retries avoid
// peers that failed the batch, then busy ones; run on shuffled peer lists.

const peers: PeerInfo[] = [
  { id: 'a', lowest: 0, head: 1000 },
  { id: 'b', lowest: 0, head: 1000 },
  { id: 'c', lowest: 0, head: 1000 },
  { id: 'pruned', lowest: 500, head: 1000 },
  { id: 'behind', lowest: 0, head: 49 }
]

describe('PeerBalancer', () => {
  it('eligibility needs lowest <= from and head >= to', () => {
    expect(isEligible({ id: 'x', lowest: 10, head: 20 }, 10, 20)).toBe(true)
    expect(isEligible({ id: 'x', lowest: 10, head: 20 }, 9, 20)).toBe(false)
    expect(isEligible({ id: 'x', lowest: 10, head: 20 }, 10, 21)).toBe(false)
  })

  it("a peer's own limit lowers its cap (a slow link gets less work), never below one request", () => {
    const b = new PeerBalancer(4)
    const limits = new Map([['a', 1], ['b', 0]])
    const limit = (p: string): number => limits.get(p) ?? 4
    const two = peers.slice(0, 2)
    b.acquire('a')
    // a is at its limit of 1; b's limit of 0 still lets one request in.
    expect(b.bestPeer(two, 0, 99, () => 0, limit)).toBe('b')
    b.acquire('b')
    expect(b.bestPeer(two, 0, 99, () => 0, limit)).toBeUndefined()
    // Without the limits both take up to 4.
    expect(b.bestPeer(two, 0, 99, () => 0)).toBe('a')
  })

  const rng = new SeededRandom(46)
  for (let round = 0; round < 5; round++) {
    const shuffled = rng.shuffle(peers)
    it(`prefers peers without failures, then idle ones, then the smallest id (shuffle ${round})`, () => {
      const b = new PeerBalancer(2)
      const failures = new Map([['a', 1]])
      const failuresOf = (p: string): number => failures.get(p) ?? 0
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('b')
      b.acquire('b')
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('c')
      b.acquire('c')
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('b')
      b.acquire('b')
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('c')
      b.acquire('c')
      // b and c are at the cap: the peer that failed is the one left
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('a')
      b.acquire('a')
      b.acquire('a')
      // every peer holding [0, 99] is at the cap; 'behind' holds only [0, 49]
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBeUndefined()
      expect(b.bestPeer(shuffled, 0, 49, failuresOf)).toBe('behind')
      // 'pruned' is asked only inside its range
      expect(b.bestPeer(shuffled, 500, 599, failuresOf)).toBe('pruned')
      b.release('b')
      expect(b.activeRequests('b')).toBe(1)
      expect(b.bestPeer(shuffled, 0, 99, failuresOf)).toBe('b')
    })
  }
})
