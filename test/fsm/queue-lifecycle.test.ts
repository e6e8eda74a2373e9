import { describe, expect, it } from 'vitest'
import { AbortError, BusyError, InvalidInputError } from '../../src/errors.js'
import { Queue, QueueClosedError } from '../../src/fsm/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { harness, honestAfter, items, range, SimConsumer, settle } from './helpers.js'

// Ported from Prysm TestBlocksQueue_InitStartStop (reference section 4(d), 1-5): every loop, timer and request
// ends on stop().

describe('Queue lifecycle', () => {
  it('stop without start is clean, and the queue cannot run afterwards (1, 3)', async () => {
    const h = harness({ start: 0, target: 10 })
    await h.queue.stop()
    await expect(h.queue.run()).rejects.toBeInstanceOf(QueueClosedError)
    expect(h.net.asked()).toEqual([])
  })

  it('stop aborts every request, clears every timer and ends run() with AbortError (2)', async () => {
    const h = harness({ start: 0, target: 10_000, window: 6, noPeerWatchdogMs: 1000 })
    h.net.add('a', { behaviour: 'stall' })
    h.net.add('b', { behaviour: honestAfter(60_000) })
    h.net.add('c', { behaviour: honestAfter(5_000) })
    const running = h.queue.run()
    const outcome = running.catch((e: unknown) => e)
    await settle()
    h.clock.advance(2_000)
    await settle()
    expect(h.queue.getDebugState().inFlight).toBeGreaterThan(0)
    expect(h.clock.pendingTimers).toBeGreaterThan(0)
    await h.queue.stop()
    expect(await outcome).toBeInstanceOf(AbortError)
    expect(h.clock.pendingTimers).toBe(0)
    expect(h.net.signals.every((s) => s.aborted)).toBe(true)
    expect(['a', 'b', 'c'].map((p) => h.net.inFlight(p))).toEqual([0, 0, 0])
    const state = h.queue.getDebugState()
    expect(state.phase).toBe('closed')
    expect(state.inFlight).toBe(0)
  })

  it('restarting a stopped queue fails; a second stop is harmless (3, 4)', async () => {
    const h = harness({ start: 0, target: 1000 })
    h.net.add('a', { behaviour: 'stall' })
    const outcome = h.queue.run().catch((e: unknown) => e)
    await settle()
    await h.queue.stop()
    await h.queue.stop()
    expect(await outcome).toBeInstanceOf(AbortError)
    await expect(h.queue.run()).rejects.toBeInstanceOf(QueueClosedError)
    expect(() => h.queue.setTarget(2000)).toThrow(QueueClosedError)
  })

  it("the caller's signal ends the loop like stop() (5)", async () => {
    const h = harness({ start: 0, target: 1000, holdTimeoutMs: 10_000 })
    h.net.add('a', { behaviour: honestAfter(100) })
    const controller = new AbortController()
    const outcome = h.queue.run({ signal: controller.signal }).catch((e: unknown) => e)
    h.clock.advance(100)
    await settle()
    controller.abort()
    expect(await outcome).toBeInstanceOf(AbortError)
    expect(h.clock.pendingTimers).toBe(0)
    await h.queue.stop()
  })

  it('an already aborted signal ends run() before any request', async () => {
    const h = harness({ start: 0, target: 100 })
    h.net.add('a')
    await expect(h.queue.run({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    expect(h.net.asked()).toEqual([])
  })

  it('stop waits for the delivery in flight, whose consumer sees the abort', async () => {
    const clock = new FakeClock()
    let signal: AbortSignal | undefined
    let finished = false
    const queue = new Queue({
      start: 0,
      target: 63,
      clock,
      io: {
        peers: () => [{ id: 'a', lowest: 0, head: 100 }],
        fetch: async (_p, from, amount) => items(from, from + amount - 1),
        deliver: async (_items, options) => {
          signal = options.signal
          await new Promise<void>((resolve) => clock.setTimeout(resolve, 1000))
          finished = true
          return { ok: true }
        }
      }
    })
    const outcome = queue.run().catch((e: unknown) => e)
    await settle()
    expect(signal?.aborted).toBe(false)
    let stopped = false
    const stopping = queue.stop().then(() => {
      stopped = true
    })
    await settle()
    expect(signal?.aborted).toBe(true)
    expect(stopped).toBe(false) // still waiting for the consumer
    clock.advance(1000)
    await stopping
    expect(finished).toBe(true)
    expect(await outcome).toBeInstanceOf(AbortError)
    expect(clock.pendingTimers).toBe(0)
  })

  it('a second concurrent run() is refused; after completion nothing is left and the queue is closed', async () => {
    const h = harness({ start: 0, target: 300 })
    h.net.add('a', { behaviour: honestAfter(10) })
    const first = h.run()
    await expect(h.queue.run()).rejects.toBeInstanceOf(BusyError)
    await first
    expect(h.consumer.sequence).toEqual(range(0, 300))
    expect(h.clock.pendingTimers).toBe(0)
    await h.queue.stop()
    await expect(h.queue.run()).rejects.toBeInstanceOf(QueueClosedError)
  })

  it('a stop() from a listener ends the run', async () => {
    const h = harness({ start: 0, target: 1000 }, { consumer: new SimConsumer() })
    h.net.add('a')
    h.queue.addEventListener('batch:delivered', () => {
      void h.queue.stop()
    })
    await expect(h.run()).rejects.toBeInstanceOf(AbortError)
    expect(h.consumer.sequence).toEqual(range(0, 63))
    expect(h.clock.pendingTimers).toBe(0)
  })

  it('checks its init', () => {
    const io = { peers: () => [], fetch: async () => [], deliver: async () => ({ ok: true }) as const }
    const bad = [
      { start: -1, target: 10 },
      { start: 0.5, target: 10 },
      { start: 0, target: -2 },
      { start: 0, target: 10, batchSize: 0 },
      { start: 0, target: 10, window: 1.5 },
      { start: 0, target: 10, maxInFlightPerPeer: 0 },
      { start: 0, target: 10, holdTimeoutMs: 0 },
      { start: 0, target: 10, fetchTimeoutMs: Number.POSITIVE_INFINITY },
      { start: 0, target: 10, noPeerWatchdogMs: -5 }
    ]
    for (const init of bad) expect(() => new Queue({ ...init, io })).toThrow(InvalidInputError)
    expect(() => new Queue({ start: 0, target: 10, io: {} as never })).toThrow(InvalidInputError)
    expect(() => new Queue({ start: 0, target: 10, io, noPeerTimeoutMs: Number.POSITIVE_INFINITY })).not.toThrow()
  })
})
