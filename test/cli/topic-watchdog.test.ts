import { describe, expect, it } from 'vitest'
import type { TopicState } from '../../src/net/topic-protocols.js'
import { stuckReason, TopicProgressClock, type TopicStuckView } from '../../src/cli/topic-watchdog.js'

const state = (head: number, hashByte: number): TopicState => ({
  lowest: 0,
  head,
  headHash: new Uint8Array(32).fill(hashByte),
  checkpoint: { number: -1, root: new Uint8Array(32) }
})

const view = (over: Partial<TopicStuckView>): TopicStuckView => ({
  topic: 'news',
  trust: { quorum: 2 },
  states: new Map(),
  everServed: false,
  checkpoint: false,
  busy: false,
  idleMs: 8_000,
  ...over
})

describe('TopicProgressClock', () => {
  it('a long sync that keeps verifying items or trie nodes is never idle for long', () => {
    const clock = new TopicProgressClock(-1, 0)
    for (let t = 500, head = 0; t <= 600_000; t += 500, head += 10) {
      clock.report({ phase: 'items', head, target: 1_000_000 }, t)
      expect(clock.idleMs(t)).toBe(0)
    }
    const trie = new TopicProgressClock(-1, 0)
    const checkpoint = { number: 99, root: new Uint8Array(32) }
    for (let t = 500, nodes = 1; t <= 60_000; t += 500, nodes++) {
      trie.report({ phase: 'trie', head: -1, target: 99, trie: { checkpoint, nodes, bytes: nodes * 100, pending: 4, busy: 0, stored: 0 } }, t)
      expect(trie.idleMs(t)).toBe(0)
    }
  })

  it('is not idle while a downloaded checkpoint trie is adopted, however long that takes, and counts again after', () => {
    const clock = new TopicProgressClock(-1, 0)
    const checkpoint = { number: 999_999, root: new Uint8Array(32) }
    clock.report({ phase: 'trie', head: -1, target: 999_999, trie: { checkpoint, nodes: 50, bytes: 5_000, pending: 10, busy: 0, stored: 0 } }, 1_000)
    expect(clock.idleMs(9_000)).toBe(8_000)
    clock.report({ phase: 'trie', head: -1, target: 999_999, trie: { checkpoint, nodes: 90, bytes: 9_000, pending: 0, busy: 0, stored: 0 } }, 10_000)
    expect(clock.idleMs(70_000)).toBe(0)
    clock.adoptionEnded(70_000)
    expect(clock.idleMs(75_000)).toBe(5_000)
  })

  it('reports that repeat the same head, nodes and target are no progress', () => {
    const clock = new TopicProgressClock(5, 0)
    clock.report({ phase: 'items', head: 10, target: 20 }, 1_000)
    for (let t = 1_500; t <= 9_000; t += 500) clock.report({ phase: 'items', head: 10, target: 20 }, t)
    clock.targetIs(20, 9_000)
    expect(clock.idleMs(9_000)).toBe(8_000)
    // A refusal since the last progress makes the peers busy; progress clears it.
    clock.refused(9_000)
    expect(clock.busy).toBe(true)
    clock.targetIs(21, 9_500)
    expect(clock.busy).toBe(false)
    expect(clock.idleMs(9_500)).toBe(0)
  })

  it('takes a checkpoint trie sync\'s busy peers for a refusal, and its nodes for progress', () => {
    const clock = new TopicProgressClock(-1, 0)
    const checkpoint = { number: 99, root: new Uint8Array(32) }
    clock.report({ phase: 'trie', head: -1, target: 99, trie: { checkpoint, nodes: 10, bytes: 1_000, pending: 4, busy: 0, stored: 0 } }, 1_000)
    expect(clock.busy).toBe(false)
    // Refused: nothing moves but the count of busy peers.
    clock.report({ phase: 'trie', head: -1, target: 99, trie: { checkpoint, nodes: 10, bytes: 1_000, pending: 4, busy: 1, stored: 0 } }, 2_000)
    expect(clock.busy).toBe(true)
    expect(clock.idleMs(5_000)).toBe(4_000)
    clock.report({ phase: 'trie', head: -1, target: 99, trie: { checkpoint, nodes: 11, bytes: 1_100, pending: 3, busy: 0, stored: 0 } }, 5_000)
    expect(clock.busy).toBe(false)
  })
})

describe('stuckReason', () => {
  it('names the cause, from nobody serving to peers that send nothing that verifies', () => {
    expect(stuckReason(view({}))).toBe('no dialled peer serves topic "news"')
    expect(stuckReason(view({ everServed: true }))).toBe('topic "news": no peer serves it any more (nothing verified for 8 s)')
    expect(stuckReason(view({ states: new Map([['a', state(9, 1)]]) }))).toBe(
      'topic "news": only 1 dialled peer serves it, --quorum needs 2'
    )
    expect(stuckReason(view({ trust: { publisher: 'P' }, states: new Map([['a', state(9, 1)]]) }))).toBe(
      'topic "news": no dialled peer holds a checkpoint signed by P'
    )
    const forked = new Map([
      ['a', state(9, 1)],
      ['b', state(9, 2)]
    ])
    expect(stuckReason(view({ states: forked }))).toBe(
      'topic "news": 2 peers report different histories (the same head with different items); no 2 agree (nothing verified for 8 s)'
    )
    const apart = new Map([
      ['a', state(9, 1)],
      ['b', state(4, 2)]
    ])
    expect(stuckReason(view({ states: apart }))).toBe('topic "news": 2 peers report different heads (9, 4); no 2 agree (nothing verified for 8 s)')
    expect(stuckReason(view({ states: apart, busy: true }))).toBe(
      'topic "news": nothing verified for 8 s: the 2 dialled peers serving it answered busy (RATE_LIMITED)'
    )
    const agreeing = new Map([
      ['a', state(9, 1)],
      ['b', state(9, 1)]
    ])
    expect(stuckReason(view({ states: agreeing }))).toBe(
      'topic "news": no peer answered with items that verify for 8 s (2 dialled peers serve it)'
    )
  })
})
