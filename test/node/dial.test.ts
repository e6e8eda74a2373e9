import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { AbortError } from '../../src/errors.js'
import { dialWithRetry } from '../../src/node/dial.js'
import { FakeClock } from '../helpers/fake-clock.js'

const addr = multiaddr('/ip4/127.0.0.1/tcp/1')
const connection = {} as Connection

/** A dial that fails `failures` times, recording the clock's time of every attempt. */
function flaky(clock: FakeClock, failures: number) {
  const at: number[] = []
  const dial = async (): Promise<Connection> => {
    at.push(clock.now())
    if (at.length <= failures) throw new Error(`refused ${at.length}`)
    return connection
  }
  return { dial, at }
}

/** Lets the promise chain run, then moves the fake clock 50 ms, until `done` settles (or `steps` steps). */
async function drive<T>(clock: FakeClock, done: Promise<T>, steps = 100): Promise<T> {
  let settled = false
  void done.then(
    () => (settled = true),
    () => (settled = true)
  )
  for (let i = 0; i < steps && !settled; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    clock.advance(50)
  }
  return done
}

describe('dialWithRetry', () => {
  it('dials again after a failure, waiting twice as long each time (with the jitter pinned at its top)', async () => {
    const clock = new FakeClock()
    const { dial, at } = flaky(clock, 2)
    const result = await drive(clock, dialWithRetry(dial, addr, { clock, backoffMs: 100, random: () => 0.999, attempts: 4 }))
    expect(result).toBe(connection)
    expect(at).toHaveLength(3)
    // Waits of (almost) 100 and 200 ms, seen in steps of the 50 ms the test advances by.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(100)
    expect(at[1]! - at[0]!).toBeLessThan(150)
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(200)
    expect(at[2]! - at[1]!).toBeLessThan(250)
  })

  it('waits at least half the backoff with the jitter at its bottom', async () => {
    const clock = new FakeClock()
    const { dial, at } = flaky(clock, 1)
    await drive(clock, dialWithRetry(dial, addr, { clock, backoffMs: 400, random: () => 0 }))
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(200)
    expect(at[1]! - at[0]!).toBeLessThan(250)
  })

  it('gives up after `attempts` dials with the last error', async () => {
    const clock = new FakeClock()
    const { dial, at } = flaky(clock, 10)
    await expect(drive(clock, dialWithRetry(dial, addr, { clock, attempts: 3, backoffMs: 10 }))).rejects.toThrow('refused 3')
    expect(at).toHaveLength(3)
  })

  /** Dials that each fail after 2.5 s with an error named `name`, driven on a fake clock until given up. */
  async function slowFailures(name: string, message = 'The operation was aborted due to timeout'): Promise<number[]> {
    const clock = new FakeClock()
    const at: number[] = []
    const slowDial = async (): Promise<Connection> => {
      at.push(clock.now())
      await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), 2_500))
      const error = new Error(`${message} ${at.length}`)
      error.name = name
      throw error
    }
    const dialling = dialWithRetry(slowDial, addr, { clock, attempts: 2, backoffMs: 100, busyRetryWindowMs: 20_000, random: () => 0.999 })
    await expect(drive(clock, dialling, 2_000)).rejects.toThrow(message)
    return at
  }

  it('gives a peer whose connect fails slowly (unreachable, blackholed) `attempts` dials only', async () => {
    expect(await slowFailures('TimeoutError')).toHaveLength(2)
  })

  it('gives a peer whose handshake fails for another reason than a reset or a timeout `attempts` dials only', async () => {
    expect(await slowFailures('EncryptionFailedError', 'Payload identity key does not match the expected peer id')).toHaveLength(2)
  })

  it('keeps dialling a busy peer that resets the handshake at once, until the window ends', async () => {
    const clock = new FakeClock()
    const at: number[] = []
    const resetting = async (): Promise<Connection> => {
      at.push(clock.now())
      const error = new Error('read ECONNRESET')
      error.name = 'EncryptionFailedError'
      throw error
    }
    const dialling = dialWithRetry(resetting, addr, { clock, attempts: 2, backoffMs: 100, busyRetryWindowMs: 20_000, random: () => 0.999 })
    await expect(drive(clock, dialling, 2_000)).rejects.toThrow('ECONNRESET')
    // 100, 200, 400, ... ms apart, then 4 s apart (the cap), until 20 s after the first.
    expect(at.length).toBeGreaterThanOrEqual(7)
    expect(at.at(-1)!).toBeGreaterThanOrEqual(20_000 - 4_050)
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeLessThanOrEqual(4_050)
  })

  it('keeps dialling a peer whose handshakes time out past `attempts`, until the window since the first dial ends', async () => {
    // libp2p's error when the encryption handshake of a connection it made failed: a busy server.
    const at = await slowFailures('EncryptionFailedError')
    // Far more than 2 dials: each takes 2.5 s and a wait of at most 4 s, until 20 s have passed.
    expect(at.length).toBeGreaterThanOrEqual(4)
    // The last dial was decided inside the window (a failure before 20 s), and it failed after it.
    expect(at.at(-1)!).toBeLessThan(20_000 + 4_000)
    expect(at.at(-1)! + 2_500).toBeGreaterThanOrEqual(20_000)
    // The waits stop doubling at 4 s.
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeLessThanOrEqual(2_500 + 4_000 + 50)
  })

  it('stops waiting as soon as its signal aborts, without another dial', async () => {
    const clock = new FakeClock()
    const { dial, at } = flaky(clock, 10)
    const controller = new AbortController()
    const dialling = dialWithRetry(dial, addr, { clock, backoffMs: 10_000, signal: controller.signal })
    await new Promise((resolve) => setImmediate(resolve))
    controller.abort()
    await expect(dialling).rejects.toBeInstanceOf(AbortError)
    expect(at).toHaveLength(1)
    expect(clock.pendingTimers).toBe(0)
  })
})
