import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  formatProgress,
  type ProgressSnapshot,
  percentDone,
  ProgressReporter,
  progressRecord
} from '../../src/cli/progress.js'

const trie: ProgressSnapshot = { phase: 'trie', unit: 'nodes', done: 12345, bytes: 3_400_000, counts: { pending: 456, peers: 3 } }
const publish: ProgressSnapshot = { phase: 'publish', unit: 'items', done: 4096, total: 50000 }

describe('progress lines', () => {
  it('a trie sync shows nodes, bytes, rate, pending and peers, and no percentage or ETA: its total is unknown', () => {
    const rates = { rate: 1234.4, bytesRate: 500_000 }
    expect(formatProgress(trie, rates)).toBe('trie  12345 nodes  3.4 MB  1234 nodes/s  pending 456  peers 3')
    expect(progressRecord(trie, rates)).toEqual({ phase: 'trie', nodes: 12345, bytes: 3_400_000, rate: 1234, pending: 456, peers: 3 })
    // However much is pending: pending is what is asked for now, not what is left.
    for (const pending of [0, 1, 10_000_000]) {
      const s = { ...trie, counts: { pending, peers: 1 } }
      expect(percentDone(s)).toBeUndefined()
      expect(formatProgress(s, rates)).not.toMatch(/%|ETA/)
      expect(progressRecord(s, rates)).not.toHaveProperty('percent')
      expect(progressRecord(s, rates)).not.toHaveProperty('etaS')
    }
  })

  it('with a total: done of total, a percentage rounded down, and an ETA from the rate', () => {
    const rates = { rate: 2345, bytesRate: 0 }
    expect(formatProgress(publish, rates)).toBe('publish  4096/50000 items  8%  2345 items/s  ETA 20s')
    expect(progressRecord(publish, rates)).toEqual({ phase: 'publish', items: 4096, total: 50000, percent: 8, rate: 2345, etaS: 20 })
    // No rate yet: no ETA, still the percentage.
    expect(progressRecord(publish, { rate: 0, bytesRate: 0 })).not.toHaveProperty('etaS')
  })

  it('reading a file of known size: entries counted, the percentage from the bytes', () => {
    const read: ProgressSnapshot = { phase: 'read', unit: 'entries', done: 1000, bytes: 12_300_000, bytesTotal: 50_000_000 }
    expect(formatProgress(read, { rate: 100, bytesRate: 1_000_000 })).toBe('read  1000 entries  12.3/50.0 MB  24%  100 entries/s  ETA 38s')
    // Standard input: no size, no percentage.
    const { bytesTotal: _, ...stdin } = read
    expect(progressRecord(stdin, { rate: 100, bytesRate: 1 })).toEqual({ phase: 'read', entries: 1000, bytes: 12_300_000, rate: 100 })
  })

  it('the percentage never goes backwards as work is done, and says 100 only when all is done', () => {
    let previous = -1
    for (let done = 0; done <= 99_999; done += 7) {
      const percent = percentDone({ ...publish, done, total: 99_999 })!
      expect(percent).toBeGreaterThanOrEqual(previous)
      expect(percent).toBeLessThan(100)
      previous = percent
    }
    expect(percentDone({ ...publish, done: 99_999, total: 99_999 })).toBe(100)
    expect(percentDone({ ...publish, done: 0, total: 0 })).toBe(100)
  })
})

class Collect extends Writable {
  text = ''
  isTTY: boolean
  constructor(tty: boolean) {
    super()
    this.isTTY = tty
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

describe('ProgressReporter', () => {
  it('off a terminal: nothing during the first interval, then a JSON line per interval with the rate of the phase', async () => {
    const out = new Collect(false)
    const reporter = new ProgressReporter(out, { intervalMs: 1000 }, 0)
    reporter.update({ ...publish, done: 0 }, 10)
    reporter.update({ ...publish, done: 1000 }, 900)
    reporter.update({ ...publish, done: 2000 }, 1010)
    reporter.update({ ...publish, done: 2500 }, 1500)
    reporter.finish(1600)
    await new Promise((resolve) => setImmediate(resolve))
    const lines = out.text.trim().split('\n')
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ phase: 'publish', items: 2000, total: 50000, percent: 4, rate: 2000, etaS: 24 }])
  })

  it('a total that moves within a phase: done of the new total, no percentage or ETA for the rest of the phase', async () => {
    const out = new Collect(false)
    const reporter = new ProgressReporter(out, { intervalMs: 0 }, 0)
    const items = (done: number, total: number): ProgressSnapshot => ({ phase: 'items', unit: 'items', done, total })
    reporter.update(items(0, 1000), 0)
    reporter.update(items(500, 1000), 1000)
    // Peers report newer items: the target doubles while the sync goes on.
    reporter.update(items(600, 2000), 2000)
    reporter.update(items(1900, 2000), 3000)
    // Unverified items dropped: the count goes back.
    reporter.update({ ...publish, done: 100, total: 1000 }, 4000)
    reporter.update({ ...publish, done: 50, total: 1000 }, 5000)
    reporter.update(items(2000, 2000), 6000)
    await new Promise((resolve) => setImmediate(resolve))
    const lines = out.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)
    expect(lines.map((l) => [l['items'], l['total'], l['percent'], l['etaS']])).toEqual([
      [0, 1000, 0, undefined],
      [500, 1000, 50, 1],
      [600, 2000, undefined, undefined],
      [1900, 2000, undefined, undefined],
      // A new phase has its own total: a percentage again, until its count goes back.
      [100, 1000, 10, undefined],
      [50, 1000, undefined, undefined],
      [2000, 2000, 100, undefined]
    ])
    // The terminal line shows done of the new total without a percentage.
    expect(formatProgress({ ...items(600, 2000), moving: true }, { rate: 100, bytesRate: 0 })).toBe('items  600/2000 items  100 items/s')
  })

  it('on a terminal: one line redrawn in place, ended by finish', async () => {
    const out = new Collect(true)
    const reporter = new ProgressReporter(out, { intervalMs: 200 }, 0)
    reporter.update(trie, 0)
    reporter.update({ ...trie, done: 20000 }, 1000)
    reporter.finish(2000)
    await new Promise((resolve) => setImmediate(resolve))
    expect(out.text).toBe(
      '\rtrie  20000 nodes  3.4 MB  7655 nodes/s  pending 456  peers 3\x1b[K' +
        '\rtrie  20000 nodes  3.4 MB  3828 nodes/s  pending 456  peers 3\x1b[K\n'
    )
  })
})
