import { describe, expect, it } from 'vitest'
import { ConcurrencyLimit } from '../../src/util/concurrency-limit.js'

describe('ConcurrencyLimit', () => {
  it('runs at most its number of calls at once, the others in call order, and frees a place when a call fails', async () => {
    const gate = new ConcurrencyLimit(2)
    let running = 0
    let most = 0
    const started: number[] = []
    const releases: Array<() => void> = []
    const call = (i: number, fail = false) =>
      gate.run(async () => {
        started.push(i)
        running++
        most = Math.max(most, running)
        await new Promise<void>((resolve) => releases.push(resolve))
        running--
        if (fail) throw new Error(`call ${i} failed`)
        return i
      })
    const calls = [call(0, true), call(1), call(2), call(3)]
    calls[0]!.catch(() => undefined)
    await new Promise((resolve) => setImmediate(resolve))
    expect(started).toEqual([0, 1])
    releases.shift()!() // call 0 fails: call 2 takes its place
    await expect(calls[0]).rejects.toThrow('call 0 failed')
    await new Promise((resolve) => setImmediate(resolve))
    expect(started).toEqual([0, 1, 2])
    while (releases.length > 0 || started.length < 4) {
      releases.shift()?.()
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(await Promise.all(calls.slice(1))).toEqual([1, 2, 3])
    expect(most).toBe(2)
    // Empty again: a new call starts at once.
    let ran = false
    await gate.run(async () => {
      ran = true
    })
    expect(ran).toBe(true)
  })
})
