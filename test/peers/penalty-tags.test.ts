import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Logger, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { PEER_TAG_WRITE_INTERVAL_MS } from '../../src/constants.js'
import { PENALTY_TAG, PenaltyTags, tagValue } from '../../src/peers/penalty-tags.js'
import { FakeClock } from '../helpers/fake-clock.js'

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('PenaltyTags', () => {
  let peer: PeerId
  beforeAll(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  function tags(clearsAt: (clock: FakeClock) => number | undefined = () => undefined) {
    const clock = new FakeClock()
    const writes: (number | undefined)[] = []
    const ttls: (number | undefined)[] = []
    const closed: string[] = []
    const log = Object.assign(() => undefined, { error: () => undefined }) as unknown as Logger
    const t = new PenaltyTags({
      peerStore: {
        merge: async (_id, data) => {
          const tag = (data.tags as Record<string, { value: number; ttl?: number } | undefined> | undefined)?.[PENALTY_TAG]
          writes.push(tag?.value)
          ttls.push(tag?.ttl)
          return undefined as never
        }
      },
      connectionManager: { closeConnections: async (id) => void closed.push(id.toString()) },
      scorer: { clearsAt: () => clearsAt(clock) },
      clock,
      log
    })
    return { t, clock, writes, ttls, closed }
  }

  it("shows a score in libp2p's range for tags: rounded, and at most 100 (the peer store refuses more)", () => {
    expect([0.4, 37.4, 99.6, 120, 1e9].map(tagValue)).toEqual([0, 37, 100, 100, 100])
  })

  it('lets the tag expire when the score will have decayed away', async () => {
    const { t, ttls } = tags((clock) => clock.now() + 5_000)
    t.set(peer.toString(), 40, false)
    await flush()
    expect(ttls).toEqual([5_000])
  })

  it('writes at once, then at most once an interval with the newest value', async () => {
    const { t, clock, writes } = tags()
    const key = peer.toString()
    t.set(key, 1, false)
    for (let v = 2; v <= 100; v++) t.set(key, Math.min(v, 99), false)
    await flush()
    expect(writes).toEqual([1])
    clock.advance(PEER_TAG_WRITE_INTERVAL_MS)
    await flush()
    expect(writes).toEqual([1, 99])
    // Nothing new: the next interval writes nothing, and the peer is forgotten.
    clock.advance(PEER_TAG_WRITE_INTERVAL_MS)
    await flush()
    expect(writes).toEqual([1, 99])
    expect(clock.pendingTimers).toBe(0)
  })

  it('never delays a disconnect, and no older value follows it', async () => {
    const { t, clock, writes, closed } = tags()
    const key = peer.toString()
    t.set(key, 50, false)
    t.set(key, 60, false)
    t.set(key, 100, true)
    await flush()
    expect(writes).toEqual([50, 100])
    expect(closed).toEqual([key])
    clock.advance(PEER_TAG_WRITE_INTERVAL_MS)
    await flush()
    expect(writes).toEqual([50, 100])
  })

  it('stop drops what waits', async () => {
    const { t, clock, writes } = tags()
    t.set(peer.toString(), 5, false)
    t.set(peer.toString(), 6, false)
    t.stop()
    expect(clock.pendingTimers).toBe(0)
    clock.advance(PEER_TAG_WRITE_INTERVAL_MS)
    await flush()
    expect(writes).toEqual([5])
  })
})
