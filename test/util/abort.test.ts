import { describe, expect, it } from 'vitest'
import { AbortError } from '../../src/errors.js'
import { raceSignal, sleep, throwIfAborted } from '../../src/util/abort.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** The number of 'abort' listeners a signal holds (Node keeps them in a symbol-keyed map we cannot read). */
function countingSignal(controller: AbortController): { signal: AbortSignal; listeners: () => number } {
  const signal = controller.signal
  let count = 0
  const add = signal.addEventListener.bind(signal)
  const remove = signal.removeEventListener.bind(signal)
  signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => {
    if (args[0] === 'abort') count++
    add(...args)
  }) as typeof signal.addEventListener
  signal.removeEventListener = ((...args: Parameters<AbortSignal['removeEventListener']>) => {
    if (args[0] === 'abort') count--
    remove(...args)
  }) as typeof signal.removeEventListener
  return { signal, listeners: () => count }
}

describe('throwIfAborted', () => {
  it('does nothing without a signal or before it aborts', () => {
    expect(() => throwIfAborted(undefined)).not.toThrow()
    expect(() => throwIfAborted(new AbortController().signal)).not.toThrow()
  })

  it('throws AbortError with the reason as cause and the given message', () => {
    const controller = new AbortController()
    controller.abort('why')
    let caught: unknown
    try {
      throwIfAborted(controller.signal, 'store aborted')
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(AbortError)
    expect((caught as AbortError).message).toBe('store aborted')
    expect((caught as AbortError).cause).toBe('why')
  })
})

describe('raceSignal', () => {
  it('settles as the promise does when the signal stays quiet, and removes its listener', async () => {
    const { signal, listeners } = countingSignal(new AbortController())
    await expect(raceSignal(Promise.resolve(7), signal)).resolves.toBe(7)
    await expect(raceSignal(Promise.reject(new RangeError('x')), signal)).rejects.toBeInstanceOf(RangeError)
    expect(listeners()).toBe(0)
  })

  it('rejects with AbortError as soon as the signal aborts, while the promise is still pending', async () => {
    const controller = new AbortController()
    const { signal, listeners } = countingSignal(controller)
    const raced = raceSignal(new Promise<number>(() => undefined), signal, 'gave up')
    expect(listeners()).toBe(1)
    controller.abort('stop')
    await expect(raced).rejects.toMatchObject({ name: 'AbortError', message: 'gave up', cause: 'stop' })
    expect(listeners()).toBe(0)
  })

  it('rejects at once for a signal that already aborted, even with a settled promise', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(raceSignal(Promise.resolve(1), controller.signal)).rejects.toBeInstanceOf(AbortError)
  })

  it('passes the promise through without a signal', async () => {
    await expect(raceSignal(Promise.resolve('a'), undefined)).resolves.toBe('a')
  })
})

describe('sleep', () => {
  it('resolves after the given time on the injected clock, not before', async () => {
    const clock = new FakeClock()
    let done = false
    const slept = sleep(100, { clock }).then(() => {
      done = true
    })
    clock.advance(99)
    await Promise.resolve()
    expect(done).toBe(false)
    clock.advance(1)
    await slept
    expect(done).toBe(true)
    expect(clock.pendingTimers).toBe(0)
  })

  it('rejects with AbortError and clears its timer when the signal aborts', async () => {
    const clock = new FakeClock()
    const controller = new AbortController()
    const slept = sleep(100, { clock, signal: controller.signal })
    expect(clock.pendingTimers).toBe(1)
    controller.abort('enough')
    await expect(slept).rejects.toMatchObject({ name: 'AbortError', cause: 'enough' })
    expect(clock.pendingTimers).toBe(0)
  })

  it('rejects at once, without a timer, for a signal that already aborted', async () => {
    const clock = new FakeClock()
    const controller = new AbortController()
    controller.abort()
    await expect(sleep(100, { clock, signal: controller.signal })).rejects.toBeInstanceOf(AbortError)
    expect(clock.pendingTimers).toBe(0)
  })

  it('removes its abort listener when it resolves', async () => {
    const clock = new FakeClock()
    const { signal, listeners } = countingSignal(new AbortController())
    const slept = sleep(5, { clock, signal })
    clock.advance(5)
    await slept
    expect(listeners()).toBe(0)
  })
})
