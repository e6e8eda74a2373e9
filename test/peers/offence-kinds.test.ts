import { describe, expect, it } from 'vitest'
import { PEER_FAULT_OFFENCES, QUEUE_FAULT_OFFENCES, queueFaultOffence, TRIE_PENALTY_OFFENCES } from '../../src/peers/offence-kinds.js'

describe('offence kinds', () => {
  it('weighs proven faults as bad data or bad proofs, a lost vote as outvoted, and an unknown fault as bad data', () => {
    expect(PEER_FAULT_OFFENCES).toEqual({ malformed: 'malformed', oversized: 'oversized', 'hash-mismatch': 'bad-data', 'bad-proof': 'bad-proof' })
    expect(QUEUE_FAULT_OFFENCES).toEqual({
      malformed: 'malformed',
      'too-many': 'bad-data',
      'out-of-range': 'bad-data',
      'not-ascending': 'bad-data',
      duplicate: 'bad-data',
      gap: 'bad-data',
      empty: 'stalled',
      'rejected-content': 'outvoted'
    })
    expect(TRIE_PENALTY_OFFENCES).toEqual({ 'invalid-node': 'bad-data', 'unrequested-node': 'bad-data', 'protocol-error': 'malformed', stalled: 'stalled' })
    expect(queueFaultOffence('rejected-content')).toBe('outvoted')
    expect(queueFaultOffence('something new')).toBe('bad-data')
    expect(queueFaultOffence('toString')).toBe('bad-data') // not a property of every object
  })
})
