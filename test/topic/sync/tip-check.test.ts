import { describe, expect, it } from 'vitest'
import type { PeerInfo } from '../../../src/fsm/types.js'
import { firstDifference, planTipCheck, tipToDrop } from '../../../src/topic/sync/tip-check.js'

const hash = (byte: number): Uint8Array => new Uint8Array(32).fill(byte)
const peer = (id: string, lowest: number, head: number): PeerInfo => ({ id, lowest, head })

describe('planTipCheck', () => {
  const peers = [peer('a', 0, 100), peer('b', 0, 120), peer('c', 80, 100), peer('d', 0, 99)]

  it('re-checks our newest startBack items against the peers that hold all of them', () => {
    expect(planTipCheck(100, 32, 1, peers)).toEqual({ from: 69, needed: 2, peers: [peers[0], peers[1]] })
    // Item 80 onwards only: peer c holds them too.
    expect(planTipCheck(100, 21, 1, peers)).toEqual({ from: 80, needed: 2, peers: [peers[0], peers[1], peers[2]] })
  })

  it('starts at item 0 when we hold fewer items than startBack', () => {
    expect(planTipCheck(5, 32, 1, peers)?.from).toBe(0)
  })

  it('needs at least two peers, and at least the quorum', () => {
    expect(planTipCheck(100, 21, 3, peers)?.needed).toBe(3)
    expect(planTipCheck(100, 32, 3, peers)).toBeUndefined()
    expect(planTipCheck(100, 32, 1, [peers[0]!])).toBeUndefined()
  })

  it('checks nothing with startBack 0 or without items', () => {
    expect(planTipCheck(100, 0, 1, peers)).toBeUndefined()
    expect(planTipCheck(-1, 32, 1, peers)).toBeUndefined()
  })
})

describe('firstDifference', () => {
  const ours = [hash(1), hash(2), hash(3)]

  it('is -1 when every hash agrees', () => {
    expect(firstDifference(ours, [hash(1), hash(2), hash(3)], 10)).toBe(-1)
  })

  it('is the number of the first item whose hash differs', () => {
    expect(firstDifference(ours, [hash(1), hash(9), hash(9)], 10)).toBe(11)
    expect(firstDifference(ours, [hash(9), hash(2), hash(3)], 10)).toBe(10)
  })

  it('is no answer for a reply of another length', () => {
    expect(firstDifference(ours, [hash(1), hash(2)], 10)).toBeUndefined()
  })
})

describe('tipToDrop', () => {
  it('drops from where enough peers agree our items first differ', () => {
    expect(tipToDrop([11, 11], 2)).toBe(11)
    expect(tipToDrop([11, 11, 11], 3)).toBe(11)
  })

  it('drops nothing on any disagreement: one liar cannot make us delete items', () => {
    expect(tipToDrop([11, 12], 2)).toBeUndefined()
    expect(tipToDrop([11, -1], 2)).toBeUndefined()
  })

  it('drops nothing with too few answers', () => {
    expect(tipToDrop([11], 2)).toBeUndefined()
    expect(tipToDrop([], 2)).toBeUndefined()
  })

  it('drops nothing when the peers agree our items are right', () => {
    expect(tipToDrop([-1, -1], 2)).toBeUndefined()
  })
})
