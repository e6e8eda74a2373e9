import { describe, expect, it } from 'vitest'
import { AbortError } from '../../src/errors.js'
import { KeyedSerial, Serial } from '../../src/util/serial.js'

/** A promise the test settles by hand. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

describe('Serial', () => {
  it('runs calls one at a time, in call order', async () => {
    const serial = new Serial()
    const log: string[] = []
    const gates = [deferred(), deferred(), deferred()]
    const runs = gates.map((gate, i) =>
      serial.run(async () => {
        log.push(`start ${i}`)
        await gate.promise
        log.push(`end ${i}`)
        return i
      })
    )
    await flush()
    expect(log).toEqual(['start 0'])
    expect(serial.size).toBe(3)
    gates[2]!.resolve()
    gates[1]!.resolve()
    await flush()
    expect(log).toEqual(['start 0'])
    gates[0]!.resolve()
    expect(await Promise.all(runs)).toEqual([0, 1, 2])
    expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2'])
    expect(serial.size).toBe(0)
  })

  it('a call that rejects does not stop the calls behind it', async () => {
    const serial = new Serial()
    const first = serial.run(async () => {
      throw new RangeError('bad')
    })
    const second = serial.run(async () => 'ok')
    await expect(first).rejects.toBeInstanceOf(RangeError)
    await expect(second).resolves.toBe('ok')
  })

  it('a waiter whose signal aborts leaves at once, and the next still waits for the running call', async () => {
    const serial = new Serial({ abortMessage: 'left the queue' })
    const gate = deferred()
    const log: string[] = []
    const running = serial.run(async () => {
      await gate.promise
      log.push('first')
    })
    const controller = new AbortController()
    const quitter = serial.run(
      async () => {
        log.push('quitter')
      },
      { signal: controller.signal }
    )
    const third = serial.run(async () => {
      log.push('third')
    })
    controller.abort('bye')
    await expect(quitter).rejects.toMatchObject({ name: 'AbortError', message: 'left the queue', cause: 'bye' })
    await flush()
    expect(log).toEqual([])
    gate.resolve()
    await Promise.all([running, third])
    expect(log).toEqual(['first', 'third'])
  })

  it('refuses a call whose signal already aborted, without queueing it', async () => {
    const serial = new Serial()
    const controller = new AbortController()
    controller.abort()
    await expect(serial.run(async () => 1, { signal: controller.signal })).rejects.toBeInstanceOf(AbortError)
    expect(serial.size).toBe(0)
  })

  it('idle() waits for every call made so far', async () => {
    const serial = new Serial()
    const gate = deferred()
    void serial.run(() => gate.promise)
    let idle = false
    const waiting = serial.idle().then(() => {
      idle = true
    })
    await flush()
    expect(idle).toBe(false)
    gate.resolve()
    await waiting
    expect(idle).toBe(true)
  })
})

describe('KeyedSerial', () => {
  it('serialises calls per key while different keys run in parallel, and forgets idle keys', async () => {
    const lock = new KeyedSerial()
    const log: string[] = []
    const a = deferred()
    const b = deferred()
    const a1 = lock.run('a', async () => {
      log.push('a1')
      await a.promise
    })
    const a2 = lock.run('a', async () => {
      log.push('a2')
    })
    const b1 = lock.run('b', async () => {
      log.push('b1')
      await b.promise
    })
    await flush()
    expect(log).toEqual(['a1', 'b1'])
    expect(lock.size).toBe(2)
    b.resolve()
    await b1
    expect(lock.size).toBe(1)
    a.resolve()
    await Promise.all([a1, a2])
    expect(log).toEqual(['a1', 'b1', 'a2'])
    expect(lock.size).toBe(0)
  })

  it('an aborted waiter does not keep its key busy', async () => {
    const lock = new KeyedSerial()
    const controller = new AbortController()
    const gate = deferred()
    const first = lock.run('k', () => gate.promise)
    const quitter = lock.run('k', async () => undefined, { signal: controller.signal })
    controller.abort()
    await expect(quitter).rejects.toBeInstanceOf(AbortError)
    gate.resolve()
    await first
    expect(lock.size).toBe(0)
  })
})
