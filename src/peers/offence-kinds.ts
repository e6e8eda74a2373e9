import type { PeerFaultKind } from '../errors.js'
import type { PeerFaultReason } from '../fsm/types.js'
import type { PenaltyReason } from '../sync/state-syncer.js'
import type { OffenceKind } from './peer-scorer.js'

/** A fault a topic request proved (`PeerFaultError.reason`), as the ledger weighs it. */
export const PEER_FAULT_OFFENCES: { readonly [K in PeerFaultKind]: OffenceKind } = {
  malformed: 'malformed',
  oversized: 'oversized',
  'hash-mismatch': 'bad-data',
  'bad-proof': 'bad-proof'
}

/** A fault the topic downloader found in a reply (`PeerFaultReason`), as the ledger weighs it. */
export const QUEUE_FAULT_OFFENCES: { readonly [R in PeerFaultReason]: OffenceKind } = {
  malformed: 'malformed',
  'too-many': 'bad-data',
  'out-of-range': 'bad-data',
  'not-ascending': 'bad-data',
  duplicate: 'bad-data',
  gap: 'bad-data',
  // A mild fault (the peer may have pruned the range since it reported it): the topic sync never reports it.
  empty: 'stalled',
  // Lost a vote, which is weaker evidence than a failed check.
  'rejected-content': 'outvoted'
}

/** A trie sync's penalty (`PenaltyReason`), as the ledger weighs it. */
export const TRIE_PENALTY_OFFENCES: { readonly [R in PenaltyReason]: OffenceKind } = {
  'invalid-node': 'bad-data',
  'unrequested-node': 'bad-data',
  'protocol-error': 'malformed',
  stalled: 'stalled'
}

/** The kind of a downloader fault reported by name (`TopicSync` reports them as strings): bad data if unknown. */
export function queueFaultOffence(reason: string): OffenceKind {
  return Object.hasOwn(QUEUE_FAULT_OFFENCES, reason) ? QUEUE_FAULT_OFFENCES[reason as PeerFaultReason] : 'bad-data'
}
