import {
  MAX_SCORED_PEERS,
  OFFENCE_WEIGHT_BAD_DATA,
  OFFENCE_WEIGHT_BAD_PROOF,
  OFFENCE_WEIGHT_LIMIT,
  OFFENCE_WEIGHT_MALFORMED,
  OFFENCE_WEIGHT_OUTVOTED,
  OFFENCE_WEIGHT_OVERSIZED,
  OFFENCE_WEIGHT_STALLED,
  PEER_COOL_DOWN_MS,
  PEER_SCORE_HALF_LIFE_MS,
  PEER_SCORE_THRESHOLD
} from '../constants.js'
import { InvalidInputError } from '../errors.js'
import { type Clock, systemClock } from '../util/clock.js'

/** What a peer did wrong, as the ledger weighs it. */
export type OffenceKind =
  /** Items a range proof against the named checkpoint root does not prove. */
  | 'bad-proof'
  /** Data failing a check of its own: items out of range or order, a wrong hash, unrequested nodes, a bad record. */
  | 'bad-data'
  /** A reply that does not decode or breaks the protocol's shape. */
  | 'malformed'
  /** A reply frame past its size limit. */
  | 'oversized'
  /** Without a publisher: its copy of a batch lost to the one a quorum agreed on. */
  | 'outvoted'
  /** A request of its refused for passing a limit (rate; a request frame too large, too slow or cut short). */
  | 'limit'
  /** Timed out several times in a row. */
  | 'stalled'

/** The weight of each kind of offence; the constants say why. */
export const OFFENCE_WEIGHTS: { readonly [K in OffenceKind]: number } = {
  'bad-proof': OFFENCE_WEIGHT_BAD_PROOF,
  'bad-data': OFFENCE_WEIGHT_BAD_DATA,
  malformed: OFFENCE_WEIGHT_MALFORMED,
  oversized: OFFENCE_WEIGHT_OVERSIZED,
  outvoted: OFFENCE_WEIGHT_OUTVOTED,
  limit: OFFENCE_WEIGHT_LIMIT,
  stalled: OFFENCE_WEIGHT_STALLED
}

export interface PeerScorerInit {
  /** Score (rounded) at which a peer is to be disconnected. @default PEER_SCORE_THRESHOLD (100) */
  threshold?: number
  /** Time in which a score halves. @default PEER_SCORE_HALF_LIFE_MS (5 min) */
  halfLifeMs?: number
  /** How long a peer stays out after an offence. @default PEER_COOL_DOWN_MS (10 s) */
  coolDownMs?: number
  /** Peers scored at once; past it the lowest score is dropped. @default MAX_SCORED_PEERS (1024) */
  maxPeers?: number
  /** Only `now()` is read: the ledger sets no timers. @default systemClock */
  clock?: Pick<Clock, 'now'>
}

export interface OffenceVerdict {
  /** The peer's score with this offence: its earlier offences, decayed, plus this one's weight. */
  score: number
  /** The score reached the threshold: the peer is to be disconnected. */
  disconnect: boolean
}

interface Entry {
  /** The score at `at`; it decays from there. */
  score: number
  at: number
  /** When the peer's cool-down after its last offence ends. */
  cooledAt: number
}

/**
 * The one peer ledger: every offence of every protocol and syncer is weighed here into one score per peer,
 * which halves every `halfLifeMs`. A peer whose score reaches the threshold is to be disconnected; any other
 * offender is to be left out for `coolDownMs` and then asked again. Pure: it decides, its caller acts (tags,
 * disconnects, schedules the return), and time comes from the injected clock. It keeps entries only for
 * peers with a score or a cool-down left, at most `maxPeers` of them. A score outlives a disconnection, so a
 * peer cut off does not come back with a clean record.
 */
export class PeerScorer {
  readonly threshold: number
  private readonly halfLifeMs: number
  private readonly coolDownMs: number
  private readonly maxPeers: number
  private readonly clock: Pick<Clock, 'now'>
  private readonly entries = new Map<string, Entry>()

  constructor(init: PeerScorerInit = {}) {
    this.threshold = init.threshold ?? PEER_SCORE_THRESHOLD
    this.halfLifeMs = init.halfLifeMs ?? PEER_SCORE_HALF_LIFE_MS
    this.coolDownMs = init.coolDownMs ?? PEER_COOL_DOWN_MS
    this.maxPeers = init.maxPeers ?? MAX_SCORED_PEERS
    this.clock = init.clock ?? systemClock
    if (!(this.threshold > 0) || !(this.halfLifeMs > 0) || !(this.coolDownMs >= 0)) {
      throw new InvalidInputError('the threshold and half-life must be positive, the cool-down not negative')
    }
    if (!Number.isSafeInteger(this.maxPeers) || this.maxPeers < 1) throw new InvalidInputError('maxPeers must be a positive integer')
  }

  /** Records an offence of `peer` and says what its score now is, and whether that is past the threshold. */
  offence(peer: string, kind: OffenceKind): OffenceVerdict {
    const weight = OFFENCE_WEIGHTS[kind]
    if (weight === undefined) throw new InvalidInputError(`unknown offence kind ${String(kind)}`)
    const now = this.clock.now()
    const entry = this.entries.get(peer)
    // A full ledger keeps its heavier scores: a newcomer that cannot displace one is not recorded.
    if (entry === undefined && !this.makeRoom(now, weight)) return { score: weight, disconnect: Math.round(weight) >= this.threshold }
    const score = (entry === undefined ? 0 : this.decayed(entry, now)) + weight
    this.entries.set(peer, { score, at: now, cooledAt: now + this.coolDownMs })
    return { score, disconnect: Math.round(score) >= this.threshold }
  }

  /** `peer`'s score now (0 for a peer with no offences on record). */
  score(peer: string): number {
    const entry = this.live(peer)
    return entry === undefined ? 0 : this.decayed(entry, this.clock.now())
  }

  /** Whether `peer` is in the cool-down after an offence: not to be asked for data until `cooledAt`. */
  coolingDown(peer: string): boolean {
    return this.cooledAt(peer) !== undefined
  }

  /** When `peer`'s cool-down ends, while it lasts. */
  cooledAt(peer: string): number | undefined {
    const cooledAt = this.live(peer)?.cooledAt
    return cooledAt !== undefined && cooledAt > this.clock.now() ? cooledAt : undefined
  }

  /** When `peer`'s score will have decayed to nothing (rounded to 0), if it has one. */
  clearsAt(peer: string): number | undefined {
    const entry = this.live(peer)
    if (entry === undefined || Math.round(entry.score) === 0) return undefined
    // score · 2^(-t / halfLife) < 0.5  ⇔  t > halfLife · log2(2 · score)
    return entry.at + Math.ceil(this.halfLifeMs * Math.log2(2 * entry.score))
  }

  /** Drops `peer`'s record: for a peer gone for good, whose score no longer matters. */
  forget(peer: string): void {
    this.entries.delete(peer)
  }

  /** Peers on record. */
  get size(): number {
    return this.entries.size
  }

  private decayed(entry: Entry, now: number): number {
    return entry.score * 2 ** (-Math.max(0, now - entry.at) / this.halfLifeMs)
  }

  /** `peer`'s entry, dropped instead when nothing of it is left. */
  private live(peer: string): Entry | undefined {
    const entry = this.entries.get(peer)
    if (entry === undefined) return undefined
    if (this.isLive(entry, this.clock.now())) return entry
    this.entries.delete(peer)
    return undefined
  }

  private isLive(entry: Entry, now: number): boolean {
    return now < entry.cooledAt || Math.round(this.decayed(entry, now)) > 0
  }

  /**
   * Before a new entry at the cap: drops every spent entry and, if that is not enough, the lowest score, but
   * only one no higher than the newcomer's `weight`. Otherwise a flood of cheap offences from fresh peer ids
   * would evict a liar's score before it reached the threshold (found in review: one liar failed a proof every
   * cool-down for ever while sybils kept the ledger full). Returns whether there is room.
   */
  private makeRoom(now: number, weight: number): boolean {
    if (this.entries.size < this.maxPeers) return true
    let lowest: [string, number] | undefined
    for (const [peer, entry] of this.entries) {
      if (!this.isLive(entry, now)) {
        this.entries.delete(peer)
        continue
      }
      const score = this.decayed(entry, now)
      if (lowest === undefined || score < lowest[1]) lowest = [peer, score]
    }
    if (this.entries.size < this.maxPeers) return true
    if (lowest === undefined || lowest[1] > weight) return false
    this.entries.delete(lowest[0])
    return true
  }

}
