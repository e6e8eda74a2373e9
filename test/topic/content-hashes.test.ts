import { describe, expect, it } from 'vitest'
import { PeerBusyError, PeerRequestError } from '../../src/errors.js'
import type { PeerInfo } from '../../src/fsm/types.js'
import { HEDGE_AFTER_MIN_MS } from '../../src/fsm/constants.js'
import { ContentHashes } from '../../src/topic/content-hashes.js'
import { FakeClock } from '../helpers/fake-clock.js'

const hashOf = (peer: string, n: number): Uint8Array => Uint8Array.of(peer.charCodeAt(0), n & 0xff, n >> 8)

/** Peers that answer hash requests when told to (each request waits for `release`), recording what was asked. */
function harness(peers: PeerInfo[]) {
  const asked: string[] = []
  const pending: (() => void)[] = []
  const hashes = new ContentHashes({
    peers: () => peers,
    chunk: 100,
    fetch: (peer, from, to) => {
      asked.push(`${peer} ${from}-${to}`)
      return new Promise((resolve) => {
        pending.push(() => resolve(Array.from({ length: to - from + 1 }, (_, i) => hashOf(peer, from + i))))
      })
    }
  })
  const release = async (): Promise<void> => {
    for (const answer of pending.splice(0)) answer()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { hashes, asked, release }
}

const signal = new AbortController().signal

describe('ContentHashes', () => {
  it('says when the hashes were refused by a busy peer, and forgets it at the next ensure', async () => {
    let busy = true
    const hashes = new ContentHashes({
      peers: () => [
        { id: 'a', lowest: 0, head: 999 },
        { id: 'b', lowest: 0, head: 999 }
      ],
      chunk: 100,
      fetch: async (peer, from, to) => {
        if (busy && peer === 'a') throw new PeerBusyError('a is rate limiting')
        if (busy) throw new PeerRequestError(peer, 'timeout', 'no reply')
        return Array.from({ length: to - from + 1 }, (_, i) => hashOf(peer, from + i))
      }
    })
    expect(await hashes.ensure(0, 9, 999, signal)).toBe(false)
    expect(hashes.refused).toBeInstanceOf(PeerBusyError)
    busy = false
    expect(await hashes.ensure(0, 9, 999, signal)).toBe(true)
    expect(hashes.refused).toBeUndefined()
  })

  it('fetches a chunk, then the next one ahead, so the next batches never wait', async () => {
    const { hashes, asked, release } = harness([{ id: 'a', lowest: 0, head: 999 }])
    const first = hashes.ensure(0, 9, 999, signal)
    await release()
    expect(await first).toBe(true)
    expect(asked).toEqual(['a 0-99'])
    // Still more than half a chunk ahead: nothing more asked.
    expect(await hashes.ensure(10, 39, 999, signal)).toBe(true)
    expect(asked).toEqual(['a 0-99'])
    hashes.forget(0, 39)
    expect(await hashes.ensure(40, 69, 999, signal)).toBe(true)
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    await release()
    hashes.forget(40, 69)
    // Already here when asked for: answered without a request.
    expect(await hashes.ensure(70, 129, 999, signal)).toBe(true)
    expect(hashes.get(129)).toEqual({ hash: hashOf('a', 129), peer: 'a' })
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    // Within half a chunk of the end again: the chunk after is asked for.
    expect(await hashes.ensure(130, 159, 999, signal)).toBe(true)
    expect(asked).toEqual(['a 0-99', 'a 99-199', 'a 199-299'])
  })

  it('waits for the fetch ahead instead of asking again when a batch runs into it', async () => {
    const { hashes, asked, release } = harness([{ id: 'a', lowest: 0, head: 999 }])
    const first = hashes.ensure(0, 59, 999, signal)
    await release()
    await first
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    const straddling = hashes.ensure(60, 119, 999, signal)
    await release()
    expect(await straddling).toBe(true)
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    expect(hashes.get(119)?.peer).toBe('a')
  })

  it('never fetches past the target, and holds at most two chunks', async () => {
    const { hashes, asked, release } = harness([{ id: 'a', lowest: 0, head: 999 }])
    const first = hashes.ensure(0, 59, 150, signal)
    await release()
    await first
    await release()
    expect(asked).toEqual(['a 0-99', 'a 99-150'])
    expect(hashes.size).toBe(151)
    expect(await hashes.ensure(100, 150, 150, signal)).toBe(true)
    expect(asked).toHaveLength(2)
  })

  it('takes turns between peers chunk by chunk, two turns each, and clear() discards a fetch in flight', async () => {
    const peers = [
      { id: 'a', lowest: 0, head: 999 },
      { id: 'b', lowest: 0, head: 999 }
    ]
    const { hashes, asked, release } = harness(peers)
    const first = hashes.ensure(0, 59, 999, signal)
    await release()
    await first
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    hashes.clear() // a mismatch
    await release() // the fetch ahead lands after the clear: ignored
    expect(hashes.get(150)).toBeUndefined()
    const second = hashes.ensure(60, 119, 999, signal)
    await release()
    await second
    expect(hashes.get(60)?.peer).toBe('b')
    // The fetch ahead is the next turn: 'b' again, then 'a'.
    expect(asked).toEqual(['a 0-99', 'a 99-199', 'b 60-159', 'b 159-259'])
    await release()
    hashes.forget(60, 159)
    const third = hashes.ensure(160, 219, 999, signal)
    await release()
    await third
    // The fetch ahead is 'a''s turn; its hash of item 259 is not the one held (each peer here hashes its own
    // way), so the next peer in turn is asked at once.
    expect(asked.slice(-2)).toEqual(['a 259-359', 'b 259-359'])
    expect(hashes.get(200)?.peer).toBe('b')
  })

  it('asks the next peer too when the one whose turn it is has not answered within the hedge delay', async () => {
    // An outside tester's liar answered valid hashes 9 s late on each of its turns: a 20k-item sync took 100 s.
    const clock = new FakeClock()
    const asked: string[] = []
    const aborted: string[] = []
    const hashes = new ContentHashes({
      peers: () => [
        { id: 'a', lowest: 0, head: 999 },
        { id: 'b', lowest: 0, head: 999 }
      ],
      chunk: 100,
      clock,
      fetch: (peer, from, to, { signal }) => {
        asked.push(`${peer} ${from}-${to}`)
        if (peer === 'a') {
          return new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => {
              aborted.push(peer)
              reject(new Error('aborted'))
            })
          )
        }
        return Promise.resolve(Array.from({ length: to - from + 1 }, (_, i) => hashOf(peer, from + i)))
      }
    })
    const first = hashes.ensure(0, 9, 999, signal)
    await new Promise((resolve) => setImmediate(resolve))
    expect(asked).toEqual(['a 0-99'])
    clock.advance(HEDGE_AFTER_MIN_MS - 1)
    expect(asked).toEqual(['a 0-99'])
    clock.advance(1)
    expect(await Promise.race([first, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1_000))])).toBe(true)
    expect(asked).toEqual(['a 0-99', 'b 0-99'])
    expect(hashes.get(0)?.peer).toBe('b')
    await new Promise((resolve) => setImmediate(resolve))
    expect(aborted).toEqual(['a']) // the slow request is given up once another answered
  })

  it('resolves false when no eligible peer gives the range, and skips a peer that gives too few', async () => {
    const peers = [
      { id: 'a', lowest: 0, head: 999 },
      { id: 'b', lowest: 50, head: 999 }
    ]
    const short = new ContentHashes({ peers: () => peers, chunk: 100, fetch: async () => [Uint8Array.of(1)] })
    expect(await short.ensure(0, 9, 999, signal)).toBe(false)
    // One short of the batch is too few as well: its last item would have no hash.
    const nine = async (_peer: string, from: number): Promise<Uint8Array[]> => Array.from({ length: 9 }, (_, i) => hashOf('a', from + i))
    const oneShort = new ContentHashes({ peers: () => peers, chunk: 100, fetch: nine })
    expect(await oneShort.ensure(0, 9, 999, signal)).toBe(false)
    const none = new ContentHashes({ peers: () => [], chunk: 100, fetch: async () => [] })
    expect(await none.ensure(0, 9, 999, signal)).toBe(false)
  })
})

describe('ContentHashes with a batch at the start of the chunk fetched ahead', () => {
  it('waits for that fetch instead of asking again', async () => {
    const { hashes, asked, release } = harness([{ id: 'a', lowest: 0, head: 999 }])
    const first = hashes.ensure(0, 99, 999, signal)
    await release()
    await first
    expect(asked).toEqual(['a 0-99', 'a 99-199'])
    hashes.forget(0, 99)
    const next = hashes.ensure(100, 149, 999, signal)
    await release()
    expect(await next).toBe(true)
    expect(asked).toEqual(['a 0-99', 'a 99-199', 'a 199-299'])
  })
})

describe('ContentHashes with a quorum', () => {
  const peers: PeerInfo[] = ['a', 'b', 'c'].map((id) => ({ id, lowest: 0, head: 999 }))
  /** `a` and `c` hold one history, `b` another; `silent` peers never answer until their request is aborted. */
  function quorumHashes(quorum: number, silent: string[] = []) {
    const aborted: string[] = []
    const hashes = new ContentHashes({
      peers: () => peers,
      chunk: 100,
      quorum,
      fetch: (peer, from, to, { signal: asked }) => {
        if (silent.includes(peer)) {
          return new Promise((_resolve, reject) => {
            asked.addEventListener('abort', () => {
              aborted.push(peer)
              reject(asked.reason)
            })
          })
        }
        const history = peer === 'b' ? 'b' : 'a'
        return Promise.resolve(Array.from({ length: to - from + 1 }, (_, i) => hashOf(history, from + i)))
      }
    })
    return { hashes, aborted }
  }

  it('believes only hashes that quorum peers agree on, and asks for the batch only', async () => {
    const { hashes } = quorumHashes(2)
    expect(await hashes.ensure(10, 19, 999, signal)).toBe(true)
    expect(hashes.get(10)?.hash).toEqual(hashOf('a', 10))
    expect(hashes.get(19)?.hash).toEqual(hashOf('a', 19))
    expect(hashes.get(20)).toBeUndefined()
  })

  it('believes nothing without a quorum', async () => {
    const { hashes } = quorumHashes(3)
    expect(await hashes.ensure(10, 19, 999, signal)).toBe(false)
    expect(hashes.get(10)).toBeUndefined()
  })

  it('is not held up by a silent peer while enough others agree, whose request is then aborted', async () => {
    const { hashes, aborted } = quorumHashes(2, ['b'])
    expect(await hashes.ensure(0, 9, 999, signal)).toBe(true)
    expect(hashes.get(0)?.hash).toEqual(hashOf('a', 0))
    expect(aborted).toEqual(['b'])
  })
})

describe('ContentHashes with a quorum, against peers that agree in part', () => {
  const peers: PeerInfo[] = ['a', 'b', 'c'].map((id) => ({ id, lowest: 0, head: 999 }))
  /** A quorum of 2 over peers answering as `answers` says. */
  function agreeing(answers: Record<string, (from: number, to: number) => Uint8Array[]>) {
    return new ContentHashes({ peers: () => peers, chunk: 100, quorum: 2, fetch: async (peer, from, to) => answers[peer]!(from, to) })
  }
  const honest = (from: number, to: number): Uint8Array[] => Array.from({ length: to - from + 1 }, (_, i) => hashOf('a', from + i))

  it('believes nothing when the peers agree on the first hashes only: a forger may copy those', async () => {
    const forger = (history: string) => (from: number, to: number) => honest(from, to).map((h, i) => (i === 0 ? h : hashOf(history, from + i)))
    const hashes = agreeing({ a: honest, b: forger('b'), c: forger('c') })
    expect(await hashes.ensure(10, 19, 999, signal)).toBe(false)
    expect(hashes.get(11)).toBeUndefined()
  })

  it('takes no vote from a short reply, however many peers give the same one', async () => {
    const short = (from: number, to: number): Uint8Array[] => honest(from, to).slice(0, 5)
    const hashes = agreeing({ a: short, b: honest, c: short })
    expect(await hashes.ensure(10, 19, 999, signal)).toBe(false)
    expect(hashes.get(10)).toBeUndefined()
  })
})

describe('ContentHashes anchored on our last item', () => {
  it('believes a source only when its hash of our item from - 1 is ours', async () => {
    const { hashes, asked, release } = harness([{ id: 'a', lowest: 0, head: 999 }])
    const wrong = hashes.ensure(10, 19, 999, signal, hashOf('b', 9))
    await release()
    expect(await wrong).toBe(false)
    expect(asked).toEqual(['a 9-109'])
    expect(hashes.get(10)).toBeUndefined()
    const right = hashes.ensure(10, 19, 999, signal, hashOf('a', 9))
    await release()
    expect(await right).toBe(true)
    expect(hashes.get(10)?.hash).toEqual(hashOf('a', 10))
    expect(hashes.get(9)).toBeUndefined()
  })
})
