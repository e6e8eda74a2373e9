import { describe, expect, it } from 'vitest'
import {
  FSM,
  FSMManager,
  FSMStatus,
  InvalidBatchesStatusError,
  validateBatchesStatus
} from '../../src/fsm/index.js'

// Ported from Prysm TestStateMachineManager_* and Lodestar batches.test validateBatchesStatus (reference
// section 4(d), 27 and 44).

const { Pending, Downloading, Downloaded, Delivering, Delivered, Held, Done, Failed } = FSMStatus

describe('FSMManager', () => {
  it('an empty manager has no first, last or highest start, and allIn is false', () => {
    const m = new FSMManager()
    expect(m.size).toBe(0)
    expect(m.first).toBeUndefined()
    expect(m.last).toBeUndefined()
    expect(m.highestStart).toBeUndefined()
    expect(m.allIn(Pending)).toBe(false)
    expect([...m]).toEqual([])
    expect(() => m.validate()).not.toThrow()
  })

  it('keeps batches ordered by start whatever the insertion order', () => {
    const m = new FSMManager()
    for (const start of [128, 0, 192, 64]) m.add(new FSM({ start, count: 64 }))
    expect([...m].map((f) => f.start)).toEqual([0, 64, 128, 192])
    expect(m.first?.start).toBe(0)
    expect(m.last?.start).toBe(192)
    expect(m.highestStart).toBe(192)
    expect(m.isFirst(m.get(0)!)).toBe(true)
    expect(m.isLast(m.get(192)!)).toBe(true)
    expect(m.isFirst(m.get(64)!)).toBe(false)
    expect(m.allIn(Pending)).toBe(true)
    m.get(64)!.startDownloading('a', 1)
    expect(m.allIn(Pending)).toBe(false)
    expect(m.count(Pending)).toBe(3)
    expect(m.inStatus(Downloading).map((f) => f.start)).toEqual([64])
    expect(m.has(128)).toBe(true)
    expect(m.has(129)).toBe(false)
    expect(m.get(129)).toBeUndefined()
  })

  it('removes by start and refuses duplicates', () => {
    const m = new FSMManager()
    m.add(new FSM({ start: 0, count: 8 }))
    m.add(new FSM({ start: 8, count: 8 }))
    expect(() => m.add(new FSM({ start: 8, count: 8 }))).toThrow(InvalidBatchesStatusError)
    expect(m.remove(4)).toBe(false)
    expect(m.remove(0)).toBe(true)
    expect(m.first?.start).toBe(8)
    m.clear()
    expect(m.size).toBe(0)
  })

  it('validate refuses overlapping batches', () => {
    const m = new FSMManager()
    m.add(new FSM({ start: 0, count: 10 }))
    m.add(new FSM({ start: 8, count: 10 }))
    expect(() => m.validate()).toThrow(InvalidBatchesStatusError)
  })
})

describe('validateBatchesStatus', () => {
  const valid: FSMStatus[][] = [
    [],
    [Delivered],
    [Done, Delivered, Delivering, Pending],
    [Delivered, Delivering, Downloaded, Downloading, Pending, Held],
    [Delivering],
    [Delivered, Downloaded, Downloading],
    [Pending, Downloading, Downloaded, Held, Failed],
    [Delivered, Delivered, Pending]
  ]
  for (const statuses of valid) {
    it(`valid: [${statuses.join(', ')}]`, () => {
      expect(() => validateBatchesStatus(statuses)).not.toThrow()
    })
  }

  const invalid: FSMStatus[][] = [
    [Delivering, Delivering],
    [Pending, Delivered],
    [Downloaded, Delivering],
    [Delivering, Done],
    [Delivering, Delivered],
    [Held, Delivering],
    [Delivered, Pending, Delivering],
    [Failed, Done]
  ]
  for (const statuses of invalid) {
    it(`invalid: [${statuses.join(', ')}]`, () => {
      expect(() => validateBatchesStatus(statuses)).toThrow(InvalidBatchesStatusError)
    })
  }
})
