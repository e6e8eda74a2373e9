import type { ContentsRequest, Item, TopicState } from '../../src/net/topic-protocols.js'
import { keccak256 } from '../../src/trie/keccak.js'

/**
 * The tests' one model of a lying peer, apart from any transport. A peer answers requests of the four DSFG
 * request protocols; for each protocol a `Behaviour` says, per request, what it does instead of answering
 * honestly. Two drivers carry the model out:
 *
 * - `createAdversary` (adversary.ts): a real libp2p node on 127.0.0.1, for end-to-end tests; the honest reply
 *   comes from the library's own server functions and every lie is a change of it, down to the frame;
 * - `FakePeers` (fake-peers.ts): in-process I/O functions for unit tests (a `NodeFetcher`, a queue's `fetch`),
 *   on an injected clock; the honest entries come from the test, and faults that live in a frame or a
 *   stream become what the client's decoder or transport would have made of them.
 *
 * What a peer lies about is the protocol its behaviour is for: trie nodes (`nodes`), items (`contents`), item
 * hashes (`hashes`), its head, checkpoint and record (`status`). How it lies is the `Rule`: forge entries
 * (`fault: 'corrupt'`, `forge`, `state`, `proof`), withhold them (`limit`, `fault: 'unavailable'`), drip them (`hold`),
 * delay them (`delayMs`), go silent (`fault: 'stall'`), leave (`'reset'`, `'disconnect'`, `'stop'`), or relay
 * another's genuine data beside its own (`state` handing out another's record, `unproven` items). Gossip lies
 * (forged items, checkpoints and relayed records) exist only end to end: see `Adversary.publish*`.
 */
export type AdversaryProtocol = 'nodes' | 'status' | 'contents' | 'hashes'

/** A request as each protocol carries it. */
export interface AdversaryRequests {
  nodes: { hashes: Uint8Array[] }
  status: { topic: string }
  contents: ContentsRequest
  hashes: { topic: string; from: number; to: number }
}

/** The entries of an honest reply, per protocol (a status reply has one, or none for an unknown topic). */
export interface AdversaryEntries {
  nodes: Uint8Array
  status: TopicState
  contents: Item
  hashes: Uint8Array
}

/**
 * How a reply goes wrong:
 *
 * - `honest`: the honest reply;
 * - `corrupt`: every entry altered so that it fails verification (a node or item with its last byte flipped, a
 *   wrong hash); a status with `lowest` above `head`, which the codec rejects;
 * - `reorder`: the entries in reverse order; `duplicate`: every entry twice;
 * - `too-many`: one entry more than the request allows (repeats of the last);
 * - `oversized`: a frame one byte past `MAX_FRAME_BYTES`; `garbage`: a frame that is not RLP;
 * - `unavailable`, `rate-limited`: that status and no data;
 * - `stall`: never answers, keeps the request open; `reset`: fails the request without a reply;
 * - `disconnect`: drops the connection to the asking peer mid-request (it may come back);
 * - `stop`: the whole peer goes away mid-request (gone for good).
 */
export type Fault =
  | 'honest'
  | 'corrupt'
  | 'reorder'
  | 'duplicate'
  | 'too-many'
  | 'oversized'
  | 'garbage'
  | 'unavailable'
  | 'rate-limited'
  | 'stall'
  | 'reset'
  | 'disconnect'
  | 'stop'

/** Faults that produce no reply: the transport (or the fake I/O) carries them out. */
export type TransportFault = Extract<Fault, 'stall' | 'reset' | 'disconnect' | 'stop'>

export function isTransportFault(fault: Fault): fault is TransportFault {
  return fault === 'stall' || fault === 'reset' || fault === 'disconnect' || fault === 'stop'
}

/** Faults that live in the reply frame rather than in its entries. */
export type FrameFault = Extract<Fault, 'oversized' | 'garbage' | 'unavailable' | 'rate-limited'>

export function isFrameFault(fault: Fault): fault is FrameFault {
  return fault === 'oversized' || fault === 'garbage' || fault === 'unavailable' || fault === 'rate-limited'
}

/** What a peer does with one request. The changes apply in this order: hold, delay, limit, forge, state, fault. */
export interface Rule<P extends AdversaryProtocol = AdversaryProtocol> {
  /** @default 'honest' */
  fault?: Fault
  /** Waits until this settles before acting: a reply dripped out when the test says so. */
  hold?: () => Promise<void>
  /** Waits this long before acting (on the driver's clock): a slow peer. */
  delayMs?: number
  /**
   * Nodes only: answers with nodes, never a subtrie as its leaves, whatever the request allows (a server of an
   * earlier version: legal). Every lie about entries answers so too.
   */
  plain?: boolean
  /** At most this many entries of the honest reply: a legal short reply, withholding the rest. */
  limit?: number
  /** The entries to send instead of the honest ones (which it is given): forged, made up, or fewer. */
  forge?: (honest: AdversaryEntries[P][], request: AdversaryRequests[P]) => AdversaryEntries[P][]
  /** Status only: the state to report instead of ours (a higher head, a forged checkpoint); `honest` is ours. */
  state?: (honest: TopicState | null) => TopicState
  /**
   * Contents only: the checkpoint root the request names is ignored, so the reply carries the peer's own
   * items with no proof: what a forger on another history can send at best.
   */
  unproven?: boolean
  /** Contents only, end to end: the range proof to send instead of the honest one (none, another range's). */
  proof?: (honest: Uint8Array[]) => Uint8Array[]
  /** End to end only: this exact reply frame instead of any change above. */
  reply?: Uint8Array
  /** Unit only: the reply comes even when the request was aborted meanwhile (a reply racing the abort). */
  lateAfterAbort?: boolean
}

/** One request as the peer received it; `call` counts this peer's requests of this protocol from 1. */
export interface AdversaryCall<P extends AdversaryProtocol = AdversaryProtocol> {
  protocol: P
  call: number
  /** The asking peer's id. */
  peer: string
  request: AdversaryRequests[P]
}

/** A fault for every request, a rule, or a choice per request (say honest first, then gone). */
export type Behaviour<P extends AdversaryProtocol = AdversaryProtocol> =
  | Fault
  | Rule<P>
  | ((call: AdversaryCall<P>) => Fault | Rule<P> | Promise<Fault | Rule<P>>)

/** A behaviour per protocol; a protocol left out is answered honestly. */
export type Behaviours = { [P in AdversaryProtocol]?: Behaviour<P> }

/** The rule `behaviour` gives for `call`. */
export async function ruleFor<P extends AdversaryProtocol>(behaviour: Behaviour<P> | undefined, call: AdversaryCall<P>): Promise<Rule<P>> {
  return toRule(typeof behaviour === 'function' ? await behaviour(call) : (behaviour ?? 'honest'))
}

export function toRule<P extends AdversaryProtocol>(chosen: Fault | Rule<P>): Rule<P> {
  return typeof chosen === 'string' ? { fault: chosen } : chosen
}

/** Whether `rule` changes the entries of the honest reply (else the honest reply goes out as it is). */
export function changesEntries<P extends AdversaryProtocol>(rule: Rule<P>): boolean {
  const fault = rule.fault ?? 'honest'
  const entryFault = fault !== 'honest' && !isFrameFault(fault) && !isTransportFault(fault)
  return rule.limit !== undefined || rule.forge !== undefined || rule.state !== undefined || rule.proof !== undefined || entryFault
}

/** How each protocol's entries are lied about. */
interface EntryLies<E, R> {
  corrupt(entry: E): E
  /** An entry to add after `entries` (the last one again, or a filler when there is none). */
  more(entries: E[], request: R): E
  /** Most entries the request allows in a reply. */
  allowed(request: R): number
}

/** A copy of `bytes` with its last byte flipped: same length, fails any hash check. */
function flipped(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice()
  out[out.length - 1]! ^= 0xff
  return out
}

const LIES: { [P in AdversaryProtocol]: EntryLies<AdversaryEntries[P], AdversaryRequests[P]> } = {
  nodes: {
    corrupt: flipped,
    more: (nodes) => nodes.at(-1) ?? Uint8Array.of(0x80),
    allowed: (request) => request.hashes.length
  },
  contents: {
    corrupt: (item) => ({ n: item.n, data: flipped(item.data) }),
    more: (items, request) => {
      const last = items.at(-1)
      return last === undefined ? { n: request.from, data: Uint8Array.of(1) } : { n: last.n + 1, data: last.data }
    },
    allowed: (request) => request.amount
  },
  hashes: {
    corrupt: flipped,
    more: (hashes) => hashes.at(-1) ?? keccak256(Uint8Array.of(1)),
    allowed: (request) => request.to - request.from + 1
  },
  status: {
    corrupt: (state) => ({ ...state, lowest: state.head + 1 }),
    more: (states) => states.at(-1)!,
    allowed: () => 1
  }
}

/**
 * The entries `rule` makes of the honest ones for `request`: limited, forged, the status lie, then the
 * fault's change. Frame and transport faults leave the entries alone (their drivers carry them out).
 */
export function lieAbout<P extends AdversaryProtocol>(
  protocol: P,
  rule: Rule<P>,
  honest: AdversaryEntries[P][],
  request: AdversaryRequests[P]
): AdversaryEntries[P][] {
  const lies = LIES[protocol] as EntryLies<AdversaryEntries[P], AdversaryRequests[P]>
  let entries = rule.limit === undefined ? honest : honest.slice(0, rule.limit)
  if (rule.forge !== undefined) entries = rule.forge(entries, request)
  if (rule.state !== undefined && protocol === 'status') entries = [rule.state((entries[0] as TopicState | undefined) ?? null)] as AdversaryEntries[P][]
  switch (rule.fault ?? 'honest') {
    case 'corrupt':
      return entries.map((e) => lies.corrupt(e))
    case 'reorder':
      return [...entries].reverse()
    case 'duplicate':
      return entries.flatMap((e) => [e, e])
    case 'too-many': {
      const out = [...entries]
      while (out.length <= lies.allowed(request)) out.push(lies.more(out, request))
      return out
    }
    default:
      return entries
  }
}
