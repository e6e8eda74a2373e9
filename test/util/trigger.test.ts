import { describe, expect, it } from 'vitest'
import { BusyError } from '../../src/errors.js'
import { Trigger } from '../../src/util/trigger.js'

/** Whether `promise` has settled once pending microtasks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  void promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    }
  )
  for (let i = 0; i < 5; i++) await Promise.resolve()
  return done
}

describe('Trigger', () => {
  it('waits until triggered', async () => {
    const trigger = new Trigger()
    const woken = trigger.wait()
    expect(await settled(woken)).toBe(false)
    trigger.trigger()
    expect(await settled(woken)).toBe(true)
    expect(trigger.triggered).toBe(false)
  })

  it('does not miss a trigger that came before the wait, and consumes it', async () => {
    const trigger = new Trigger()
    trigger.trigger()
    expect(trigger.triggered).toBe(true)
    expect(await settled(trigger.wait())).toBe(true)
    // Consumed: the next wait sleeps again.
    expect(await settled(trigger.wait())).toBe(false)
  })

  it('coalesces many triggers into one wake-up', async () => {
    const trigger = new Trigger()
    for (let i = 0; i < 10; i++) trigger.trigger()
    expect(await settled(trigger.wait())).toBe(true)
    expect(await settled(trigger.wait())).toBe(false)
  })

  it('wakes a waiter once, however often it is triggered while waking', async () => {
    const trigger = new Trigger()
    const first = trigger.wait()
    trigger.trigger()
    trigger.trigger()
    expect(await settled(first)).toBe(true)
    // The second trigger came after the waiter was woken: it is pending for the next pass.
    expect(trigger.triggered).toBe(true)
  })

  it('clear() forgets a pending wake-up: a pass that starts after the trigger covers it', async () => {
    const trigger = new Trigger()
    trigger.trigger()
    trigger.clear()
    expect(trigger.triggered).toBe(false)
    expect(await settled(trigger.wait())).toBe(false)
  })

  it('resolves when the signal aborts, and at once when it already has', async () => {
    const trigger = new Trigger()
    const controller = new AbortController()
    const woken = trigger.wait(controller.signal)
    expect(await settled(woken)).toBe(false)
    controller.abort()
    expect(await settled(woken)).toBe(true)
    // The aborted waiter is gone: a new one may wait, and a signal already aborted does not block it.
    expect(await settled(trigger.wait(controller.signal))).toBe(true)
  })

  it('refuses a second waiter while one waits', async () => {
    const trigger = new Trigger()
    const woken = trigger.wait()
    expect(() => trigger.wait()).toThrow(BusyError)
    trigger.trigger()
    await woken
  })

  it('a change made while the loop is busy wakes its next wait: one more pass, then it sleeps', async () => {
    const trigger = new Trigger()
    const controller = new AbortController()
    let changes = 0
    let seen = 0
    let passes = 0
    let openGate!: () => void
    const gate = new Promise<void>((resolve) => {
      openGate = resolve
    })
    const loop = (async () => {
      while (!controller.signal.aborted) {
        trigger.clear()
        seen = changes
        passes++
        await gate
        await trigger.wait(controller.signal)
      }
    })()
    await settled(Promise.resolve())
    expect(passes).toBe(1)
    // Two changes while the first pass is busy: they coalesce into one more pass, which sees both.
    changes += 2
    trigger.trigger()
    trigger.trigger()
    openGate()
    await settled(Promise.resolve())
    expect(passes).toBe(2)
    expect(seen).toBe(2)
    await settled(Promise.resolve())
    expect(passes).toBe(2)
    controller.abort()
    await loop
  })
})
