import { describe, expect, it } from 'vitest'
import { StoreError, TopicTrieError } from '../../../src/errors.js'
import { CheckpointVerifier, checkpointWithin } from '../../../src/topic/sync/checkpoint-verifier.js'

const cp = (number: number) => ({ number, root: Uint8Array.of(number & 0xff) })

describe('checkpointWithin', () => {
  it('finds a checkpoint at our head or among the items stored, not one verified already', () => {
    expect(checkpointWithin(undefined, 10, 20, -1)).toBeUndefined()
    expect(checkpointWithin(cp(9), 10, 20, -1)).toEqual(cp(9)) // at our head (from - 1)
    expect(checkpointWithin(cp(8), 10, 20, -1)).toBeUndefined() // below it: checked when it arrived
    expect(checkpointWithin(cp(15), 10, 20, -1)).toEqual(cp(15))
    expect(checkpointWithin(cp(20), 10, 20, -1)).toEqual(cp(20))
    expect(checkpointWithin(cp(21), 10, 20, -1)).toBeUndefined() // past them: checked when items cross it
    expect(checkpointWithin(cp(15), 10, 20, 15)).toBeUndefined()
  })
})

describe('CheckpointVerifier', () => {
  it('compares our root with the signed one, and marks the items verified only when they match', async () => {
    let root = Uint8Array.of(5)
    const verifier = new CheckpointVerifier({ root: async () => root })
    expect(await verifier.matches(cp(4))).toBe(false)
    expect(verifier.verifiedThrough).toBe(-1)
    root = Uint8Array.of(4)
    expect(await verifier.matches(cp(4))).toBe(true)
    expect(verifier.verifiedThrough).toBe(4)
  })

  it('never checks again at or below what it verified (a replay would rebuild the whole trie)', async () => {
    let calls = 0
    const verifier = new CheckpointVerifier({
      root: async () => Uint8Array.of(0),
      adopt: async () => {
        calls++
      }
    })
    verifier.verified(10)
    expect(await verifier.matches(cp(7))).toBe(true)
    expect(await verifier.matches(cp(10))).toBe(true)
    expect(calls).toBe(0)
    expect(await verifier.matches(cp(11))).toBe(true)
    expect([calls, verifier.verifiedThrough]).toEqual([1, 11])
    verifier.verified(3)
    expect(verifier.verifiedThrough).toBe(11)
  })

  it('with adopt, reads a TopicTrieError as a mismatch and lets a store failure through', async () => {
    let failure: Error = new TopicTrieError('items do not rebuild to the root')
    const verifier = new CheckpointVerifier({
      root: async () => Uint8Array.of(0),
      adopt: async () => {
        throw failure
      }
    })
    expect(await verifier.matches(cp(2))).toBe(false)
    failure = new StoreError('disk full')
    await expect(verifier.matches(cp(2))).rejects.toBeInstanceOf(StoreError)
    expect(verifier.verifiedThrough).toBe(-1)
  })
})
