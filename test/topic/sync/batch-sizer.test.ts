import { describe, expect, it } from 'vitest'
import { DEFAULT_TOPIC_FIRST_BATCH_ITEMS, MAX_RESPONSE_BYTES, MAX_STREAM_WINDOW_BYTES } from '../../../src/constants.js'
import { BatchSizer } from '../../../src/topic/sync/batch-sizer.js'

/** `count` items of `bytes` bytes each. */
/** What a batch leaves for its proof's branch nodes (`PROOF_ROOM_BYTES` in batch-sizer.ts). */
const PROOF_ROOM = 24 * 1024

const batch = (count: number, bytes: number) => Array.from({ length: count }, () => ({ data: new Uint8Array(bytes) }))

describe('BatchSizer', () => {
  it('starts with a few items, at most the configured size', () => {
    expect(new BatchSizer({ maxItems: 256 }).size).toBe(DEFAULT_TOPIC_FIRST_BATCH_ITEMS)
    expect(new BatchSizer({ maxItems: 8 }).size).toBe(8)
    expect(new BatchSizer({ maxItems: 256, firstItems: 4 }).size).toBe(4)
  })

  it('sizes batches to what one reply carries of the first verified items, beside their range proof', () => {
    const sizer = new BatchSizer({ maxItems: 256 })
    expect(sizer.record(batch(16, 64 * 1024))).toBe(true)
    expect(sizer.itemBytes).toBe(64 * 1024)
    // 32 items fill a reply, and a server cuts a proven one to 29: the proof holds both edge items whole.
    expect(sizer.size).toBe(29)
    const largestProof = 2 * 64 * 1024 + 2 * 17 * 532
    expect(29 * 64 * 1024 + largestProof).toBeLessThanOrEqual(MAX_RESPONSE_BYTES)
  })

  it('never goes past the configured size for small items, nor below one for huge ones', () => {
    const small = new BatchSizer({ maxItems: 256 })
    small.record(batch(16, 10))
    expect(small.size).toBe(256)
    const huge = new BatchSizer({ maxItems: 256, replyBytes: 1000 })
    huge.record(batch(2, 5000))
    expect(huge.size).toBe(1)
  })

  it('follows later batches by a moving average that gives the newest a quarter', () => {
    const sizer = new BatchSizer({ maxItems: 1000, replyBytes: 100_000 + PROOF_ROOM })
    sizer.record(batch(4, 1000))
    expect(sizer.size).toBe(100 - 2)
    // 1000 * 0.75 + 5000 * 0.25 = 2000 bytes: 50 items, less two for the proof's edges.
    expect(sizer.record(batch(4, 5000))).toBe(true)
    expect(sizer.itemBytes).toBe(2000)
    expect(sizer.size).toBe(50 - 2)
    // A batch of the average size changes nothing.
    expect(sizer.record(batch(3, 2000))).toBe(false)
    expect(sizer.size).toBe(50 - 2)
  })

  it('averages the sizes within a batch', () => {
    const sizer = new BatchSizer({ maxItems: 1000, replyBytes: 100_000 + PROOF_ROOM })
    sizer.record([{ data: new Uint8Array(500) }, { data: new Uint8Array(1500) }])
    expect(sizer.itemBytes).toBe(1000)
    expect(sizer.size).toBe(100 - 2)
  })

  it('ignores an empty batch', () => {
    const sizer = new BatchSizer({ maxItems: 256 })
    expect(sizer.record([])).toBe(false)
    expect(sizer.size).toBe(DEFAULT_TOPIC_FIRST_BATCH_ITEMS)
    expect(sizer.itemBytes).toBe(0)
  })

  it('cuts a batch a little over a stream window to one window, so a reply costs one round trip', () => {
    const sizer = new BatchSizer({ maxItems: 256 })
    sizer.record(batch(16, 1024))
    // 256 items of 1 KiB and their proof pass a 256 KiB window: 230 and a proof's room fit in it.
    expect(sizer.size).toBe(230)
    expect(230 * 1024 + PROOF_ROOM).toBeLessThanOrEqual(MAX_STREAM_WINDOW_BYTES)
    // A window smaller than half the batch leaves it whole: the reply spans windows anyway.
    const big = new BatchSizer({ maxItems: 256, windowBytes: 64 * 1024 })
    big.record(batch(16, 1024))
    expect(big.size).toBe(256)
    // Items far smaller than a window: the item cap decides, not the window.
    const small = new BatchSizer({ maxItems: 100 })
    small.record(batch(16, 1024))
    expect(small.size).toBe(100)
  })
})

