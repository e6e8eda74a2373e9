import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TransferDeadline } from '../../src/net/transfer-deadline.js'

describe('TransferDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('cuts a transfer that never moves at idleMs, as a TimeoutError', () => {
    const deadline = new TransferDeadline({ idleMs: 10_000, minBytesPerSecond: 32 * 1024 })
    vi.advanceTimersByTime(9_750)
    expect(deadline.signal.aborted).toBe(false)
    vi.advanceTimersByTime(250)
    expect(deadline.signal.aborted).toBe(true)
    expect((deadline.signal.reason as Error).name).toBe('TimeoutError')
  })

  it('lets a slow transfer that keeps moving above the floor run far past idleMs', () => {
    const deadline = new TransferDeadline({ idleMs: 10_000, minBytesPerSecond: 32 * 1024 })
    // 2 MiB at 62.5 kB/s (a quarter of 2 Mbit/s): 34 s.
    for (let t = 0; t < 34_000; t += 100) {
      deadline.moved(6_250)
      vi.advanceTimersByTime(100)
    }
    expect(deadline.signal.aborted).toBe(false)
    expect(deadline.bytes).toBe(340 * 6_250)
    deadline.dispose()
  })

  it('cuts a transfer that stops moving after a while, idleMs after its last byte', () => {
    const deadline = new TransferDeadline({ idleMs: 2_000, minBytesPerSecond: 1_000 })
    for (let t = 0; t < 5_000; t += 500) {
      deadline.moved(10_000)
      vi.advanceTimersByTime(500)
    }
    // The last bytes moved at 4.5 s.
    vi.advanceTimersByTime(1_250)
    expect(deadline.signal.aborted).toBe(false)
    vi.advanceTimersByTime(250)
    expect(deadline.signal.aborted).toBe(true)
  })

  it('cuts a trickle below the floor once the grace has passed, though bytes keep moving', () => {
    const deadline = new TransferDeadline({ idleMs: 10_000, minBytesPerSecond: 32 * 1024 })
    let cutAt: number | undefined
    for (let t = 0; t < 60_000 && cutAt === undefined; t += 1_000) {
      // 10 kB/s: never idle, but under the floor, and 32 KiB/s × (t - 10 s) passes what came at about 14.5 s.
      deadline.moved(10_000)
      vi.advanceTimersByTime(1_000)
      if (deadline.signal.aborted) cutAt = t + 1_000
    }
    expect(cutAt).toBeGreaterThanOrEqual(14_000)
    expect(cutAt).toBeLessThanOrEqual(16_000)
    expect((deadline.signal.reason as Error).message).toMatch(/floor/)
  })

  it('checks at least every 250 ms, so a long idle limit cuts a stall within 250 ms of it', () => {
    const deadline = new TransferDeadline({ idleMs: 10_000, minBytesPerSecond: 1 })
    vi.advanceTimersByTime(1_000)
    deadline.moved(100)
    // Idle since 1 s: due at 11 s. Checks a quarter of idleMs apart (2.5 s) would see it only at 12.5 s.
    vi.advanceTimersByTime(9_750)
    expect(deadline.signal.aborted).toBe(false)
    vi.advanceTimersByTime(250)
    expect(deadline.signal.aborted).toBe(true)
  })

  it('never fires once disposed (a transfer that ended)', () => {
    const deadline = new TransferDeadline({ idleMs: 1_000, minBytesPerSecond: 1_000 })
    vi.advanceTimersByTime(500)
    deadline.dispose()
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    expect(deadline.signal.aborted).toBe(false)
  })

  it('samples a counter where the transfer does not report its bytes', () => {
    let drained = 0
    const deadline = new TransferDeadline({ idleMs: 1_000, minBytesPerSecond: 100, sample: () => drained })
    for (let t = 0; t < 5_000; t += 250) {
      drained += 100
      vi.advanceTimersByTime(250)
    }
    expect(deadline.signal.aborted).toBe(false)
    vi.advanceTimersByTime(1_000)
    expect(deadline.signal.aborted).toBe(true)
  })
})
