import { describe, expect, it } from 'vitest'
import type { TopicState } from '../../../src/net/topic-protocols.js'
import {
  checkpointToSync,
  defaultSelectFork,
  quorumHead,
  syncTarget,
  type TargetAuthority,
  trieCandidate
} from '../../../src/topic/sync/target.js'
import { EMPTY_ROOT } from '../../../src/trie/keccak.js'

const root = (byte: number): Uint8Array => new Uint8Array(32).fill(byte)
const state = (number: number, r: Uint8Array, head = number + 10): TopicState => ({
  lowest: 0,
  head,
  headHash: root(0),
  checkpoint: { number, root: r }
})
/** Peers reporting checkpoints `[number, root byte]`, one each. */
const reports = (...cps: [number, number][]) => new Map(cps.map(([n, b], i) => [`p${i}`, state(n, root(b))]))
/** Peers reporting heads, one each, without a checkpoint. */
const heads = (...hs: number[]) => new Map(hs.map((h, i) => [`p${i}`, state(0, EMPTY_ROOT, h)]))

describe('defaultSelectFork', () => {
  it('takes the highest checkpoint a quorum of peers reports with the same root', () => {
    const states = reports([100, 1], [100, 1], [200, 2])
    expect(defaultSelectFork(states, 1)).toEqual({ number: 200, root: root(2) })
    expect(defaultSelectFork(states, 2)).toEqual({ number: 100, root: root(1) })
    expect(defaultSelectFork(states, 3)).toBeUndefined()
  })

  it('prefers the root more peers report at a forked number, and picks none on a tie', () => {
    expect(defaultSelectFork(reports([100, 1], [100, 1], [100, 2]), 1)).toEqual({ number: 100, root: root(1) })
    expect(defaultSelectFork(reports([100, 1], [100, 1], [100, 2], [100, 2]), 1)).toBeUndefined()
  })

  it('takes a higher checkpoint over a tie at a lower number', () => {
    expect(defaultSelectFork(reports([100, 1], [100, 2], [200, 3]), 1)).toEqual({ number: 200, root: root(3) })
  })

  it('ignores peers without a checkpoint (the empty root)', () => {
    expect(defaultSelectFork(new Map([['a', state(0, EMPTY_ROOT)]]), 1)).toBeUndefined()
  })
})

describe('quorumHead', () => {
  it('is the highest head at least quorum peers reach', () => {
    const states = heads(50, 90, 70, 90)
    expect(quorumHead(states, 1)).toBe(90)
    expect(quorumHead(states, 2)).toBe(90)
    expect(quorumHead(states, 3)).toBe(70)
    expect(quorumHead(states, 4)).toBe(50)
  })

  it('is -1 when fewer peers than the quorum report', () => {
    expect(quorumHead(heads(50, 90), 3)).toBe(-1)
    expect(quorumHead(new Map(), 1)).toBe(-1)
  })

  it('treats a quorum below one as one', () => {
    expect(quorumHead(heads(5, 9), 0)).toBe(9)
  })
})

describe('syncTarget', () => {
  it("with a publisher, is its checkpoint's number whatever peers claim, and -1 before the first", () => {
    expect(syncTarget({ kind: 'publisher', checkpoint: { number: 40, root: root(1) } })).toBe(40)
    expect(syncTarget({ kind: 'publisher', checkpoint: undefined })).toBe(-1)
  })

  it("without one, is the quorum's head", () => {
    expect(syncTarget({ kind: 'quorum', states: heads(10, 30, 20), quorum: 2 })).toBe(20)
  })
})

describe('trieCandidate', () => {
  const never = (): never => {
    throw new Error('selectFork must not be asked when a publisher decides')
  }

  it("with a publisher, is its checkpoint's number and root, and none before the first", () => {
    const signed = { number: 40, root: root(1), head: 45, headHash: root(3) }
    expect(trieCandidate({ kind: 'publisher', checkpoint: signed }, never)).toEqual({ number: 40, root: root(1) })
    expect(trieCandidate({ kind: 'publisher', checkpoint: undefined }, never)).toBeUndefined()
  })

  it("without one, is what selectFork picks from the peers' states with the quorum", () => {
    const authority: TargetAuthority = { kind: 'quorum', states: reports([100, 1], [100, 1], [200, 2]), quorum: 2 }
    expect(trieCandidate(authority, defaultSelectFork)).toEqual({ number: 100, root: root(1) })
    let asked: number | undefined
    trieCandidate(authority, (_, quorum) => {
      asked = quorum
      return undefined
    })
    expect(asked).toBe(2)
  })

  it('is none when selectFork throws', () => {
    expect(trieCandidate({ kind: 'quorum', states: reports([100, 1]), quorum: 1 }, never)).toBeUndefined()
  })
})

describe('checkpointToSync', () => {
  const cp = { number: 2000, root: root(1) }

  it('starts a checkpoint sync for a checkpoint at least minItems past our head', () => {
    expect(checkpointToSync(cp, { head: 999, doneThrough: -1, minItems: 1001 })).toBe(cp)
    expect(checkpointToSync(cp, { head: 1000, doneThrough: -1, minItems: 1001 })).toBeUndefined()
  })

  it('does not for a checkpoint verified or failed already, nor without a candidate', () => {
    expect(checkpointToSync(cp, { head: -1, doneThrough: 2000, minItems: 1 })).toBeUndefined()
    expect(checkpointToSync(cp, { head: -1, doneThrough: 1999, minItems: 1 })).toBe(cp)
    expect(checkpointToSync(undefined, { head: -1, doneThrough: -1, minItems: 1 })).toBeUndefined()
  })
})
