import { describe, expect, it } from 'vitest'
import { type ItemsFault, validateItems } from '../../src/fsm/index.js'
import { item, items } from './helpers.js'

// Ported from Lodestar collectSequentialBlocksInRange.test and Prysm
// TestBlocksFetcher_requestBlocksFromPeerReturningInvalidBlocks (reference section 4(d), 29 and 47).

const bytes = Uint8Array.of(1)

describe('validateItems', () => {
  const valid: { id: string; from: number; amount: number; reply: unknown; complete: boolean }[] = [
    { id: 'full range', from: 10, amount: 5, reply: items(10, 14), complete: true },
    { id: 'short prefix', from: 10, amount: 5, reply: items(10, 12), complete: false },
    { id: 'one item', from: 0, amount: 1, reply: [item(0)], complete: true }
  ]
  for (const { id, from, amount, reply, complete } of valid) {
    it(`accepts: ${id}`, () => {
      expect(validateItems(from, amount, reply)).toEqual({ ok: true, complete })
    })
  }

  const invalid: { id: string; reply: unknown; fault: ItemsFault }[] = [
    { id: 'empty range', reply: [], fault: 'empty' },
    { id: 'too many items', reply: items(10, 15), fault: 'too-many' },
    { id: 'item under start', reply: [item(9), item(10)], fault: 'out-of-range' },
    { id: 'item over max', reply: [item(10), item(15)], fault: 'out-of-range' },
    { id: 'duplicate numbers', reply: [item(10), item(11), item(11)], fault: 'duplicate' },
    { id: 'reverse order', reply: [item(12), item(11), item(10)], fault: 'not-ascending' },
    { id: 'partial reverse', reply: [item(10), item(12), item(11)], fault: 'not-ascending' },
    { id: 'gap in the middle', reply: [item(10), item(11), item(13)], fault: 'gap' },
    { id: 'missing first item', reply: [item(11), item(12)], fault: 'gap' },
    { id: 'not an array', reply: { 0: item(10) }, fault: 'malformed' },
    { id: 'null item', reply: [null], fault: 'malformed' },
    { id: 'fractional number', reply: [{ n: 10.5, data: bytes }], fault: 'malformed' },
    { id: 'unsafe number', reply: [{ n: 2 ** 53, data: bytes }], fault: 'malformed' },
    { id: 'string number', reply: [{ n: '10', data: bytes }], fault: 'malformed' },
    { id: 'data not bytes', reply: [{ n: 10, data: [1, 2] }], fault: 'malformed' }
  ]
  for (const { id, reply, fault } of invalid) {
    it(`rejects: ${id}`, () => {
      const check = validateItems(10, 5, reply)
      expect(check.ok).toBe(false)
      if (!check.ok) expect(check.fault).toBe(fault)
    })
  }
})
