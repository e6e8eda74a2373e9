import { describe, expect, it } from 'vitest'
import { PeerBusyError, PeerFaultError, PeerRequestError } from '../../src/errors.js'
import type { TopicState } from '../../src/net/topic-protocols.js'
import { type PeerStateChange, type StatusFetcher, TopicStateManager } from '../../src/topic/topic-state-manager.js'
import { FakeClock } from '../helpers/fake-clock.js'

const REFRESH = 30_000
const TIMEOUT = 10_000

function state(head: number, lowest = 0): TopicState {
  const headHash = new Uint8Array(32).fill(head & 0xff)
  return { lowest, head, headHash, checkpoint: { number: lowest, root: new Uint8Array(32) } }
}

type Answer = TopicState | null | Error | 'hang'

/** A scripted `fetchStatus`: each peer answers per topic what the test says, at once (or never, until aborted). */
class FakeStatus {
  readonly calls: { peer: string; topic: string; signal: AbortSignal }[] = []
  readonly answers = new Map<string, (topic: string) => Answer>()

  readonly fetch: StatusFetcher = (peer, topic, { signal }) => {
    this.calls.push({ peer, topic, signal })
    const answer = this.answers.get(peer)?.(topic) ?? null
    if (answer === 'hang') {
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    }
    if (answer instanceof Error) return Promise.reject(answer)
    return Promise.resolve(answer)
  }

  /** What `peer` answers from now on: the same for every topic, or per topic. */
  set(peer: string, answer: Answer | ((topic: string) => Answer)): void {
    this.answers.set(peer, typeof answer === 'function' ? answer : () => answer)
  }

  callsOf(peer: string): string[] {
    return this.calls.filter((c) => c.peer === peer).map((c) => c.topic)
  }
}

/** Lets the fake's settled promises and the manager's continuations run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

function setup(topics = ['a', 'b']) {
  const clock = new FakeClock()
  const status = new FakeStatus()
  const faults: [string, unknown][] = []
  const manager = new TopicStateManager({
    topics,
    fetchStatus: status.fetch,
    clock,
    refreshIntervalMs: REFRESH,
    statusTimeoutMs: TIMEOUT,
    onPeerFault: (peer, err) => faults.push([peer, err])
  })
  const events: PeerStateChange[] = []
  const removed: string[] = []
  manager.addEventListener('peer:state', (e) => events.push(e.detail))
  manager.addEventListener('peer:removed', (e) => removed.push(e.detail.peer))
  return { clock, status, faults, manager, events, removed }
}

describe('TopicStateManager', () => {
  it('asks a new peer at once for every topic, then every refresh interval', async () => {
    const { clock, status, manager, events } = setup()
    status.set('p1', (topic: string) => (topic === 'a' ? state(10) : state(50, 5)))
    manager.start()
    manager.addPeer('p1')
    expect(status.callsOf('p1')).toEqual(['a', 'b'])
    await flush()
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 10 }])
    expect(manager.peers('b')).toEqual([{ id: 'p1', lowest: 5, head: 50 }])
    expect(manager.states('a')).toEqual(new Map([['p1', state(10)]]))
    expect(manager.state('p1', 'b')).toEqual(state(50, 5))
    expect(events).toEqual([
      { peer: 'p1', topic: 'a', state: state(10) },
      { peer: 'p1', topic: 'b', state: state(50, 5) }
    ])

    clock.advance(REFRESH - 1)
    await flush()
    expect(status.calls).toHaveLength(2)
    // Only a changed state is an event.
    status.set('p1', (topic: string) => (topic === 'a' ? state(12) : state(50, 5)))
    clock.advance(1)
    await flush()
    expect(status.callsOf('p1')).toEqual(['a', 'b', 'a', 'b'])
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 12 }])
    expect(events.slice(2)).toEqual([{ peer: 'p1', topic: 'a', state: state(12) }])

    clock.advance(REFRESH)
    await flush()
    expect(status.calls).toHaveLength(6)
    expect(events).toHaveLength(3)
    await manager.stop()
  })

  it('polls peers added before start only once started; a known peer is not added twice', async () => {
    const { status, manager } = setup(['a'])
    status.set('p1', state(3))
    manager.addPeer('p1')
    await flush()
    expect(status.calls).toHaveLength(0)
    manager.start()
    manager.addPeer('p1')
    expect(status.calls).toHaveLength(1)
    await flush()
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 3 }])
    await manager.stop()
  })

  it('lists only peers that hold something of the topic, and drops a peer that stops holding it', async () => {
    const { clock, status, manager, events } = setup(['a'])
    status.set('p1', state(7))
    status.set('p2', null)
    manager.start()
    manager.addPeer('p1')
    manager.addPeer('p2')
    await flush()
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p1'])
    status.set('p1', null)
    clock.advance(REFRESH)
    await flush()
    expect(manager.peers('a')).toEqual([])
    expect(events.at(-1)).toEqual({ peer: 'p1', topic: 'a', state: null })
    await manager.stop()
  })

  it('forgets a removed peer, even in the middle of a round, and asks it nothing more', async () => {
    const { clock, status, manager, removed, events } = setup(['a'])
    status.set('p1', state(7))
    status.set('p2', 'hang')
    manager.start()
    manager.addPeer('p1')
    manager.addPeer('p2')
    await flush()
    manager.removePeer('p1')
    manager.removePeer('p2')
    manager.removePeer('unknown')
    expect(removed).toEqual(['p1', 'p2'])
    expect(manager.peers('a')).toEqual([])
    expect(manager.peerIds()).toEqual([])
    expect(status.calls.find((c) => c.peer === 'p2')?.signal.aborted).toBe(true)
    await flush()
    expect(clock.pendingTimers).toBe(0)
    clock.advance(10 * REFRESH)
    await flush()
    expect(status.calls).toHaveLength(2)
    expect(events.map((e) => e.peer)).toEqual(['p1'])
    await manager.stop()
  })

  it('blames a peer whose status is malformed and forgets what it said; others are unaffected', async () => {
    const { clock, status, manager, faults, events } = setup(['a'])
    const fault = new PeerFaultError('p2', 'malformed', 'status response: lowest above head')
    status.set('p1', state(7))
    status.set('p2', fault)
    // An injected fetchStatus is checked too: lowest above head, a short head hash.
    status.set('p3', { ...state(3), lowest: 9 })
    status.set('p4', { ...state(3), headHash: new Uint8Array(5) })
    manager.start()
    for (const p of ['p1', 'p2', 'p3', 'p4']) manager.addPeer(p)
    await flush()
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p1'])
    expect(faults.map(([peer]) => peer)).toEqual(['p2', 'p3', 'p4'])
    expect(faults[0]![1]).toBe(fault)
    expect(faults[1]![1]).toBeInstanceOf(PeerFaultError)

    // A peer that was fine and turns malformed loses its entry.
    status.set('p1', new PeerFaultError('p1', 'oversized', 'status reply too large'))
    clock.advance(REFRESH)
    await flush()
    expect(manager.peers('a')).toEqual([])
    expect(events.at(-1)).toEqual({ peer: 'p1', topic: 'a', state: null })
    expect(faults.filter(([peer]) => peer === 'p1')).toHaveLength(1)
    await manager.stop()
  })

  it('keeps the last state when a request merely fails or times out, and asks again later', async () => {
    const { clock, status, manager, faults } = setup(['a'])
    status.set('p1', state(7))
    manager.start()
    manager.addPeer('p1')
    await flush()
    status.set('p1', new PeerRequestError('p1', 'transport', 'stream reset'))
    clock.advance(REFRESH)
    await flush()
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 7 }])

    status.set('p1', 'hang')
    clock.advance(REFRESH)
    expect(status.calls).toHaveLength(3)
    clock.advance(TIMEOUT)
    await flush()
    expect(status.calls[2]!.signal.aborted).toBe(true)
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 7 }])
    expect(faults).toEqual([])

    status.set('p1', state(9))
    clock.advance(REFRESH)
    await flush()
    expect(status.calls).toHaveLength(4)
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 9 }])
    await manager.stop()
  })

  it('asks a peer that refused a round (RATE_LIMITED) again within seconds, not at the next refresh', async () => {
    const { clock, status, manager, faults } = setup(['a'])
    status.set('p1', new PeerBusyError('p1 is rate limiting'))
    manager.start()
    manager.addPeer('p1')
    await flush()
    expect(manager.peers('a')).toEqual([])
    // Refused rounds in a row: asked again after 500 ms, 1 s, 2 s, 4 s, 4 s (the busy wait, doubling to its cap).
    const at: number[] = [0]
    for (let i = 0; i < 5; i++) {
      const calls = status.calls.length
      while (status.calls.length === calls) {
        clock.advance(100)
        await flush()
      }
      at.push(clock.now())
    }
    expect(at.slice(1).map((t, i) => t - at[i]!)).toEqual([500, 1_000, 2_000, 4_000, 4_000])
    // The server has room again: its state is there within the cap, and the refresh interval applies again.
    status.set('p1', state(7))
    clock.advance(4_000)
    await flush()
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 7 }])
    const calls = status.calls.length
    clock.advance(REFRESH - 100)
    expect(status.calls).toHaveLength(calls)
    clock.advance(100)
    expect(status.calls).toHaveLength(calls + 1)
    expect(faults).toEqual([])
    await manager.stop()
  })

  it('asks at once for a new topic, or when told to refresh a peer', async () => {
    const { status, manager } = setup(['a'])
    status.set('p1', (topic: string) => (topic === 'a' ? state(1) : state(2)))
    manager.start()
    manager.addPeer('p1')
    await flush()
    manager.addTopic('b')
    await flush()
    expect(status.callsOf('p1')).toEqual(['a', 'a', 'b'])
    expect(manager.peers('b')).toEqual([{ id: 'p1', lowest: 0, head: 2 }])
    expect(manager.topics).toEqual(['a', 'b'])
    await manager.refresh('p1')
    expect(status.callsOf('p1')).toEqual(['a', 'a', 'b', 'a', 'b'])
    // A topic added while a round is in flight is asked for right after it.
    status.set('p2', 'hang')
    manager.addPeer('p2')
    manager.addTopic('c')
    expect(status.callsOf('p2')).toEqual(['a', 'b'])
    manager.removePeer('p2')
    status.set('p3', state(3))
    manager.addPeer('p3')
    manager.addTopic('d')
    await flush()
    expect(status.callsOf('p3')).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'd'])
    manager.removeTopic('b')
    expect(manager.peers('b')).toEqual([])
    await manager.stop()
  })

  it('ignores a throwing hook', async () => {
    const clock = new FakeClock()
    const status = new FakeStatus()
    status.set('p1', new PeerFaultError('p1', 'malformed', 'bad'))
    status.set('p2', state(4))
    const manager = new TopicStateManager({
      topics: ['a'],
      fetchStatus: status.fetch,
      clock,
      onPeerFault: () => {
        throw new Error('hook failed')
      }
    })
    manager.start()
    manager.addPeer('p1')
    manager.addPeer('p2')
    await flush()
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p2'])
    await manager.stop()
  })

  it('leaves no timer and no request running after stop, and resumes on start', async () => {
    const { clock, status, manager } = setup(['a'])
    status.set('idle', state(1))
    status.set('busy', 'hang')
    manager.start()
    manager.addPeer('idle')
    manager.addPeer('busy')
    await flush()
    expect(clock.pendingTimers).toBe(2) // the idle peer's refresh, the busy peer's deadline
    await manager.stop()
    expect(clock.pendingTimers).toBe(0)
    expect(status.calls.every((c) => c.signal.aborted)).toBe(true)
    clock.advance(10 * REFRESH)
    await flush()
    expect(status.calls).toHaveLength(2)
    await manager.stop() // idempotent
    // Known peers and states survive a stop; polling resumes on start.
    expect(manager.peers('a')).toEqual([{ id: 'idle', lowest: 0, head: 1 }])
    manager.start()
    expect(status.calls).toHaveLength(4)
    await manager.stop()
    expect(clock.pendingTimers).toBe(0)
  })

  it('leaves a suspended peer out for its cool-down, then asks it again and offers it to the downloader', async () => {
    const { clock, status, manager, events, removed } = setup()
    status.set('p1', state(10))
    status.set('p2', state(20))
    manager.start()
    manager.addPeer('p1')
    manager.addPeer('p2')
    await flush()
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p1', 'p2'])
    const asked = status.callsOf('p1').length

    manager.suspendPeer('p1', 5_000)
    expect(manager.suspended('p1')).toBe(true)
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p2'])
    expect(manager.state('p1', 'a')).toBeUndefined()
    expect(removed).toEqual(['p1'])
    // Neither a new connection, a refresh nor a new topic cuts the cool-down short.
    manager.addPeer('p1')
    await manager.refresh('p1')
    manager.addTopic('c')
    clock.advance(4_999)
    await flush()
    expect(status.callsOf('p1')).toHaveLength(asked)
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p2'])

    // Then it is asked for every topic again, and back with its answer.
    clock.advance(1)
    await flush()
    expect(status.callsOf('p1').slice(asked)).toEqual(['a', 'b', 'c'])
    expect(manager.suspended('p1')).toBe(false)
    expect(manager.peers('a').map((p) => p.id)).toEqual(['p1', 'p2'])
    expect(events.filter((e) => e.peer === 'p1' && e.topic === 'a')).toHaveLength(2)
    // And refreshed as usual from there on.
    clock.advance(REFRESH)
    await flush()
    expect(status.callsOf('p1').slice(asked)).toHaveLength(6)
  })

  it('drops the answer of a round a suspension cut short, keeps the later end, and ends with the peer', async () => {
    const { clock, status, manager } = setup()
    status.set('p1', 'hang')
    manager.start()
    manager.addPeer('p1')
    const round = status.calls.map((c) => c.signal)
    manager.suspendPeer('p1', 5_000)
    expect(round.every((signal) => signal.aborted)).toBe(true)
    // A second offence with a shorter cool-down does not shorten the first.
    manager.suspendPeer('p1', 1_000)
    status.set('p1', state(10))
    clock.advance(4_999)
    await flush()
    expect(status.calls).toHaveLength(2)
    // A stop and a start keep the suspension.
    await manager.stop()
    manager.start()
    await flush()
    expect(status.calls).toHaveLength(2)
    clock.advance(1)
    await flush()
    expect(manager.peers('a')).toEqual([{ id: 'p1', lowest: 0, head: 10 }])
    // A peer removed while suspended is never asked again.
    manager.suspendPeer('p1', 5_000)
    manager.removePeer('p1')
    clock.advance(10_000)
    await flush()
    expect(status.calls).toHaveLength(4)
    expect(manager.suspended('p1')).toBe(false)
    await manager.stop()
    expect(clock.pendingTimers).toBe(0)
  })
})
