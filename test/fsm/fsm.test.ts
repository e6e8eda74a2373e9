import { describe, expect, it } from 'vitest'
import {
  BatchFailedError,
  FSM,
  FSMStatus,
  InvalidBatchTransitionError,
  InvalidItemsError
} from '../../src/fsm/index.js'
import { InvalidInputError } from '../../src/errors.js'
import { item, items } from './helpers.js'

// Ported from Lodestar batch.test ("Complete state flow", "Should throw on inconsistent state") and Prysm
// TestStateMachine_trigger (reference section 4(d), 26, 37, 38).

const START = 100
const COUNT = 4
const full = (): ReturnType<typeof items> => items(START, START + COUNT - 1)

/** A fresh batch brought to `status` by legal transitions. */
function at(status: FSMStatus): FSM {
  const fsm = new FSM({ start: START, count: COUNT, maxDownloadAttempts: status === FSMStatus.Failed ? 1 : 5 })
  if (status === FSMStatus.Pending) return fsm
  fsm.startDownloading('a', 1)
  if (status === FSMStatus.Downloading) return fsm
  if (status === FSMStatus.Failed) {
    fsm.downloadingError(new Error('boom'))
    return fsm
  }
  fsm.downloadingSuccess(full())
  if (status === FSMStatus.Downloaded) return fsm
  fsm.startDelivering(START - 1)
  if (status === FSMStatus.Delivering) return fsm
  if (status === FSMStatus.Held) {
    fsm.hold('local', 0, 10)
    return fsm
  }
  fsm.deliverySuccess()
  if (status === FSMStatus.Delivered) return fsm
  fsm.validationSuccess()
  return fsm
}

const transitions: { name: string; from: FSMStatus; run: (fsm: FSM) => unknown }[] = [
  { name: 'remaining', from: FSMStatus.Pending, run: (f) => f.remaining() },
  { name: 'startDownloading', from: FSMStatus.Pending, run: (f) => f.startDownloading('b', 2) },
  { name: 'downloadingSuccess', from: FSMStatus.Downloading, run: (f) => f.downloadingSuccess(full()) },
  { name: 'downloadingError', from: FSMStatus.Downloading, run: (f) => f.downloadingError() },
  { name: 'downloadingCancelled', from: FSMStatus.Downloading, run: (f) => f.downloadingCancelled() },
  { name: 'evict', from: FSMStatus.Downloaded, run: (f) => f.evict() },
  { name: 'startDelivering', from: FSMStatus.Downloaded, run: (f) => f.startDelivering(0) },
  { name: 'deliverySuccess', from: FSMStatus.Delivering, run: (f) => f.deliverySuccess() },
  { name: 'deliveryError', from: FSMStatus.Delivering, run: (f) => f.deliveryError() },
  { name: 'deliveryDeferred', from: FSMStatus.Delivering, run: (f) => f.deliveryDeferred() },
  { name: 'hold', from: FSMStatus.Delivering, run: (f) => f.hold('local', 0, 1) },
  { name: 'resume', from: FSMStatus.Held, run: (f) => f.resume() },
  { name: 'validationSuccess', from: FSMStatus.Delivered, run: (f) => f.validationSuccess() },
  { name: 'validationError', from: FSMStatus.Delivered, run: (f) => f.validationError() }
]

describe('FSM', () => {
  it('complete state flow, including download, delivery and validation errors', () => {
    const fsm = new FSM({ start: START, count: COUNT })
    expect(fsm.status).toBe(FSMStatus.Pending)
    expect(fsm.end).toBe(103)

    expect(fsm.startDownloading('a', 1)).toEqual({ from: 100, amount: 4 })
    expect(fsm.state).toMatchObject({ status: FSMStatus.Downloading, peer: 'a', attempt: 1 })
    expect(fsm.downloadingError(new Error('timeout'))).toBe(FSMStatus.Pending)
    expect(fsm.downloadAttempts).toBe(1)
    expect(fsm.failuresAt('a')).toBe(1)

    fsm.startDownloading('b', 2)
    expect(fsm.downloadingSuccess(full())).toBe(FSMStatus.Downloaded)
    expect(fsm.state).toMatchObject({ status: FSMStatus.Downloaded, sources: [{ peer: 'b', from: 100, to: 103 }] })

    expect(fsm.startDelivering(99)).toHaveLength(4)
    expect(fsm.deliveryError(new Error('bad'))).toBe(FSMStatus.Pending)
    expect(fsm.processAttempts).toBe(1)
    expect(fsm.remaining()).toEqual({ from: 100, amount: 4 }) // rejected content is dropped

    fsm.startDownloading('c', 3)
    fsm.downloadingSuccess(full())
    fsm.startDelivering(99)
    fsm.hold('local', 5, 15)
    expect(fsm.state).toMatchObject({ status: FSMStatus.Held, reason: 'local', since: 5, until: 15 })
    expect(fsm.localFaultCount).toBe(1)
    fsm.resume()
    expect(fsm.status).toBe(FSMStatus.Downloaded)

    fsm.startDelivering(99)
    fsm.deliverySuccess()
    expect(fsm.validationError(new Error('next batch does not follow'))).toBe(FSMStatus.Pending)
    expect(fsm.processAttempts).toBe(2)

    fsm.startDownloading('c', 4)
    fsm.downloadingSuccess(full())
    fsm.startDelivering(99)
    fsm.deliveryDeferred()
    expect(fsm.status).toBe(FSMStatus.Downloaded)
    fsm.startDelivering(99)
    fsm.deliverySuccess()
    expect(fsm.validationSuccess()).toEqual([])
    expect(fsm.status).toBe(FSMStatus.Done)
    expect(fsm.downloadAttempts).toBe(1)
    expect(fsm.processAttempts).toBe(2)
  })

  describe('throws InvalidBatchTransitionError on a wrong status and leaves the state unchanged', () => {
    for (const status of Object.values(FSMStatus)) {
      for (const t of transitions) {
        if (t.from === status) continue
        it(`${t.name} in ${status}`, () => {
          const fsm = at(status)
          const before = fsm.state
          let error: unknown
          try {
            t.run(fsm)
          } catch (e) {
            error = e
          }
          expect(error).toBeInstanceOf(InvalidBatchTransitionError)
          const e = error as InvalidBatchTransitionError
          expect(e.name).toBe('InvalidBatchTransitionError')
          expect(e.code).toBe('ERR_INVALID_BATCH_TRANSITION')
          expect(e.start).toBe(START)
          expect(e.status).toBe(status)
          expect(e.expected).toEqual([t.from])
          expect(e.transition).toBe(t.name)
          expect(fsm.state).toBe(before)
        })
      }
    }
  })

  it('a short reply keeps its prefix and asks for the rest without charging an attempt', () => {
    const fsm = new FSM({ start: START, count: COUNT })
    fsm.startDownloading('a', 1)
    expect(fsm.downloadingSuccess(items(100, 101))).toBe(FSMStatus.Pending)
    expect(fsm.downloadAttempts).toBe(0)
    expect(fsm.remaining()).toEqual({ from: 102, amount: 2 })
    expect(fsm.startDownloading('b', 2)).toEqual({ from: 102, amount: 2 })
    // a failure of the remainder keeps the prefix
    fsm.downloadingError()
    expect(fsm.remaining()).toEqual({ from: 102, amount: 2 })
    fsm.startDownloading('b', 3)
    expect(fsm.downloadingSuccess(items(102, 103))).toBe(FSMStatus.Downloaded)
    expect(fsm.state).toMatchObject({
      items: full(),
      sources: [
        { peer: 'a', from: 100, to: 101 },
        { peer: 'b', from: 102, to: 103 }
      ]
    })
  })

  it('refuses items that do not answer the request', () => {
    const fsm = new FSM({ start: START, count: COUNT })
    fsm.startDownloading('a', 1)
    expect(() => fsm.downloadingSuccess([item(101)])).toThrow(InvalidItemsError)
    expect(() => fsm.downloadingSuccess([])).toThrow(InvalidItemsError)
    expect(fsm.status).toBe(FSMStatus.Downloading)
  })

  it('a cancelled download is not charged', () => {
    const fsm = at(FSMStatus.Downloading)
    fsm.downloadingCancelled()
    expect(fsm.status).toBe(FSMStatus.Pending)
    expect(fsm.downloadAttempts).toBe(0)
    expect(fsm.failedPeers).toEqual([])
  })

  it('fails after maxDownloadAttempts failed downloads, naming the range and the peers', () => {
    const fsm = new FSM({ start: START, count: COUNT, maxDownloadAttempts: 3 })
    const peers = ['a', 'b', 'a']
    peers.forEach((peer, i) => {
      fsm.startDownloading(peer, i)
      fsm.downloadingError(new Error(`fail ${i}`))
    })
    expect(fsm.status).toBe(FSMStatus.Failed)
    const s = fsm.state
    if (s.status !== FSMStatus.Failed) throw new Error('unreachable')
    expect(s.error).toBeInstanceOf(BatchFailedError)
    expect(s.error).toMatchObject({ kind: 'download', start: 100, end: 103, peers: ['a', 'b'] })
    expect((s.error.cause as Error).message).toBe('fail 2')
    expect(fsm.failuresAt('a')).toBe(2)
  })

  it('fails after maxProcessAttempts rejected deliveries, counting validation errors too', () => {
    const fsm = new FSM({ start: START, count: COUNT, maxProcessAttempts: 2 })
    fsm.startDownloading('a', 1)
    fsm.downloadingSuccess(full())
    fsm.startDelivering(99)
    fsm.deliveryError()
    fsm.startDownloading('b', 2)
    fsm.downloadingSuccess(full())
    fsm.startDelivering(99)
    fsm.deliverySuccess()
    expect(fsm.validationError(new Error('x'))).toBe(FSMStatus.Failed)
    expect(fsm.state).toMatchObject({ error: { kind: 'process', peers: ['a', 'b'] } })
  })

  it('local faults never fail the batch', () => {
    const fsm = new FSM({ start: START, count: COUNT, maxProcessAttempts: 1 })
    fsm.startDownloading('a', 1)
    fsm.downloadingSuccess(full())
    for (let i = 0; i < 10; i++) {
      fsm.startDelivering(99)
      fsm.hold('local', i, i + 1)
      fsm.resume()
    }
    expect(fsm.status).toBe(FSMStatus.Downloaded)
    expect(fsm.processAttempts).toBe(0)
    expect(fsm.localFaultCount).toBe(10)
  })

  it('startDelivering leaves out what the consumer already has', () => {
    const fsm = at(FSMStatus.Downloaded)
    expect(fsm.startDelivering(101).map((i) => i.n)).toEqual([102, 103])
    expect(fsm.state).toMatchObject({ items: full() })
  })

  it('validationSuccess names only the sources whose rejected content differs', () => {
    const fsm = new FSM({ start: START, count: COUNT })
    // first download: 'a' sent 100-101 honestly, 'b' sent 102-103 with a corrupt 103
    fsm.startDownloading('a', 1)
    fsm.downloadingSuccess(items(100, 101))
    fsm.startDownloading('b', 2)
    fsm.downloadingSuccess([item(102), { n: 103, data: Uint8Array.of(0) }])
    fsm.startDelivering(99)
    fsm.deliveryError()
    // second download from 'c' is accepted
    fsm.startDownloading('c', 3)
    fsm.downloadingSuccess(full())
    fsm.startDelivering(99)
    fsm.deliverySuccess()
    expect(fsm.validationSuccess()).toEqual([{ peer: 'b', from: 102, to: 103 }])
  })

  it('checks its init', () => {
    expect(() => new FSM({ start: -1, count: 1 })).toThrow(InvalidInputError)
    expect(() => new FSM({ start: 0, count: 0 })).toThrow(InvalidInputError)
    expect(() => new FSM({ start: 0, count: 1.5 })).toThrow(InvalidInputError)
    expect(() => new FSM({ start: 0, count: 1, maxDownloadAttempts: 0 })).toThrow(InvalidInputError)
  })
})

describe('FSM.splitAtReceived', () => {
  it('keeps the prefix as a downloaded batch and hands back the rest in chunks, with the batch\'s failures', () => {
    const fsm = new FSM({ start: 0, count: 10, maxDownloadAttempts: 3 })
    fsm.startDownloading('a', 1)
    fsm.downloadingError(new Error('reset'))
    fsm.startDownloading('b', 2)
    expect(fsm.downloadingSuccess(items(0, 2), 'b')).toBe(FSMStatus.Pending)
    const rest = fsm.splitAtReceived(3)
    expect(fsm.status).toBe(FSMStatus.Downloaded)
    expect(fsm.count).toBe(3)
    expect(fsm.end).toBe(2)
    expect(rest.map((r) => [r.start, r.count, r.status])).toEqual([
      [3, 3, FSMStatus.Pending],
      [6, 3, FSMStatus.Pending],
      [9, 1, FSMStatus.Pending]
    ])
    // Its attempts are not renewed by the split: two more failures fail each part, as they would the batch.
    for (const part of rest) {
      expect(part.failuresAt('a')).toBe(1)
      expect(part.failedPeers).toEqual(['a'])
      part.startDownloading('c', 3)
      part.downloadingError(new Error('reset'))
      part.startDownloading('c', 4)
      expect(part.downloadingError(new Error('reset'))).toBe(FSMStatus.Failed)
    }
  })

  it('splits only a pending batch with a prefix, into batches of at least one item', () => {
    const fresh = new FSM({ start: 0, count: 4 })
    expect(() => fresh.splitAtReceived(2)).toThrow(InvalidInputError)
    fresh.startDownloading('a', 1)
    expect(() => fresh.splitAtReceived(2)).toThrow(InvalidBatchTransitionError)
    fresh.downloadingSuccess([item(0)])
    expect(() => fresh.splitAtReceived(0)).toThrow(InvalidInputError)
    expect(fresh.status).toBe(FSMStatus.Pending)
    expect(fresh.splitAtReceived(8).map((r) => [r.start, r.count])).toEqual([[1, 3]])
  })
})
