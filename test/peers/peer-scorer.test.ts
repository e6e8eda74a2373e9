import { describe, expect, it } from 'vitest'
import {
  MAX_LIMIT_VIOLATIONS,
  MAX_SCORED_PEERS,
  OFFENCE_WEIGHT_BAD_DATA,
  OFFENCE_WEIGHT_BAD_PROOF,
  OFFENCE_WEIGHT_MALFORMED,
  PEER_COOL_DOWN_MS,
  PEER_SCORE_HALF_LIFE_MS,
  PEER_SCORE_THRESHOLD
} from '../../src/constants.js'
import { InvalidInputError } from '../../src/errors.js'
import { type OffenceKind, PeerScorer, type PeerScorerInit } from '../../src/peers/peer-scorer.js'

/** A scorer on a clock that moves only when the test says so. */
function setup(init: Omit<PeerScorerInit, 'clock'> = {}) {
  let time = 1_000_000
  const scorer = new PeerScorer({ ...init, clock: { now: () => time } })
  return { scorer, advance: (ms: number) => (time += ms), now: () => time }
}

describe('PeerScorer', () => {
  it('adds offences of different kinds into one score, each by its weight', () => {
    const { scorer } = setup()
    expect(scorer.offence('p', 'bad-data')).toEqual({ score: OFFENCE_WEIGHT_BAD_DATA, disconnect: false })
    expect(scorer.offence('p', 'malformed')).toEqual({ score: OFFENCE_WEIGHT_BAD_DATA + OFFENCE_WEIGHT_MALFORMED, disconnect: false })
    expect(scorer.score('p')).toBe(OFFENCE_WEIGHT_BAD_DATA + OFFENCE_WEIGHT_MALFORMED)
    // Another peer's offences are its own.
    expect(scorer.score('q')).toBe(0)
    expect(scorer.offence('q', 'stalled').score).toBeLessThan(OFFENCE_WEIGHT_BAD_DATA)
  })

  it('says disconnect when the score reaches the threshold: three severe offences, two bad proofs, a flood of refused requests', () => {
    const { scorer, advance } = setup()
    const severe: OffenceKind[] = ['bad-data', 'oversized', 'malformed']
    expect(severe.map((kind) => scorer.offence('severe', kind).disconnect)).toEqual([false, false, true])
    expect(scorer.offence('prover', 'bad-proof').disconnect).toBe(false)
    expect(scorer.offence('prover', 'bad-proof')).toEqual({ score: 2 * OFFENCE_WEIGHT_BAD_PROOF, disconnect: true })
    // Refused requests are light: MAX_LIMIT_VIOLATIONS of them within a second reach the threshold, not fewer.
    const verdicts = Array.from({ length: MAX_LIMIT_VIOLATIONS }, () => {
      advance(10)
      return scorer.offence('flooder', 'limit')
    })
    expect(verdicts.slice(0, -1).some((v) => v.disconnect)).toBe(false)
    expect(verdicts.at(-1)!.disconnect).toBe(true)
    // Timeouts are light too: a peer that stalls once is far from being cut off.
    expect(scorer.offence('slow', 'stalled').score).toBeLessThan(PEER_SCORE_THRESHOLD / 5)
  })

  it('halves scores every half-life, so offences long apart never add up to a disconnect', () => {
    const { scorer, advance } = setup()
    scorer.offence('p', 'bad-data')
    advance(PEER_SCORE_HALF_LIFE_MS)
    expect(scorer.score('p')).toBeCloseTo(OFFENCE_WEIGHT_BAD_DATA / 2, 9)
    advance(PEER_SCORE_HALF_LIFE_MS)
    expect(scorer.score('p')).toBeCloseTo(OFFENCE_WEIGHT_BAD_DATA / 4, 9)
    // Three severe offences an hour apart: each finds the last one nearly gone.
    const { scorer: patient, advance: wait } = setup()
    for (let i = 0; i < 3; i++) {
      expect(patient.offence('p', 'malformed').disconnect).toBe(false)
      wait(60 * 60_000)
    }
    // Three in two minutes are a pattern.
    for (let i = 0; i < 3; i++) {
      const { disconnect } = patient.offence('q', 'malformed')
      expect(disconnect).toBe(i === 2)
      wait(60_000)
    }
  })

  it('keeps a peer out for the cool-down after an offence, then lets it back', () => {
    const { scorer, advance, now } = setup()
    expect(scorer.coolingDown('p')).toBe(false)
    expect(scorer.cooledAt('p')).toBeUndefined()
    scorer.offence('p', 'bad-proof')
    const end = now() + PEER_COOL_DOWN_MS
    expect(scorer.coolingDown('p')).toBe(true)
    expect(scorer.cooledAt('p')).toBe(end)
    advance(PEER_COOL_DOWN_MS - 1)
    expect(scorer.coolingDown('p')).toBe(true)
    advance(1)
    expect(scorer.coolingDown('p')).toBe(false)
    // Back, with its score still on record.
    expect(scorer.score('p')).toBeGreaterThan(0)
    // A new offence starts a new cool-down.
    scorer.offence('p', 'stalled')
    expect(scorer.cooledAt('p')).toBe(now() + PEER_COOL_DOWN_MS)
  })

  it('keeps entries only while a score is left, and forgets a peer when told', () => {
    const { scorer, advance, now } = setup()
    scorer.offence('p', 'bad-data')
    scorer.offence('q', 'bad-data')
    expect(scorer.size).toBe(2)
    scorer.forget('q')
    expect(scorer.size).toBe(1)
    expect(scorer.score('q')).toBe(0)
    // Just before the moment its score rounds to 0 the entry stays; at that moment it goes.
    const clears = scorer.clearsAt('p')!
    advance(clears - now() - 1)
    expect(Math.round(scorer.score('p'))).toBeGreaterThan(0)
    expect(scorer.size).toBe(1)
    advance(1)
    expect(scorer.score('p')).toBe(0)
    expect(scorer.clearsAt('p')).toBeUndefined()
    expect(scorer.size).toBe(0)
  })

  it('holds at most maxPeers entries, dropping spent entries first and then the lowest score', () => {
    const { scorer, advance } = setup({ maxPeers: 3 })
    scorer.offence('a', 'bad-proof')
    scorer.offence('b', 'stalled')
    scorer.offence('c', 'bad-data')
    scorer.offence('d', 'malformed')
    expect(scorer.size).toBe(3)
    expect(scorer.score('b')).toBe(0) // the lowest went
    expect(scorer.score('a')).toBe(OFFENCE_WEIGHT_BAD_PROOF)
    // Once the others are spent, a newcomer takes a spent entry's place, not a live one's.
    advance(PEER_SCORE_HALF_LIFE_MS * 20)
    scorer.offence('e', 'stalled')
    expect(scorer.size).toBe(1)
    for (let i = 0; i < 10_000; i++) scorer.offence(`peer-${i}`, 'limit')
    expect(scorer.size).toBe(3)
  })

  it('a full ledger keeps heavier scores: a flood of cheap offences from new ids cannot launder a liar', () => {
    let now = 0
    const scorer = new PeerScorer({ clock: { now: () => now } })
    let sybil = 0
    const offendTwice = (): void => {
      const id = `sybil-${sybil++}`
      scorer.offence(id, 'malformed')
      scorer.offence(id, 'malformed')
    }
    for (let i = 0; i < MAX_SCORED_PEERS; i++) offendTwice()
    let disconnects = 0
    for (let round = 0; round < 60; round++) {
      now += PEER_COOL_DOWN_MS
      if (scorer.offence('liar', 'bad-proof').disconnect) disconnects++
      for (let i = 0; i < 90; i++) offendTwice()
    }
    expect(disconnects).toBeGreaterThan(0)
    expect(scorer.size).toBeLessThanOrEqual(MAX_SCORED_PEERS)
  })

  it('takes its threshold, half-life and cool-down from its init, and refuses nonsense', () => {
    const { scorer, advance } = setup({ threshold: 40, halfLifeMs: 1000, coolDownMs: 50 })
    expect(scorer.offence('p', 'bad-data').disconnect).toBe(true)
    advance(1000)
    expect(scorer.score('p')).toBeCloseTo(OFFENCE_WEIGHT_BAD_DATA / 2, 9)
    expect(scorer.coolingDown('p')).toBe(false)
    expect(() => new PeerScorer({ threshold: 0 })).toThrow(InvalidInputError)
    expect(() => new PeerScorer({ halfLifeMs: Number.NaN })).toThrow(InvalidInputError)
    expect(() => new PeerScorer({ coolDownMs: -1 })).toThrow(InvalidInputError)
    expect(new PeerScorer({ coolDownMs: 0 }).offence('p', 'stalled').disconnect).toBe(false) // no cool-down: allowed
    expect(() => new PeerScorer({ maxPeers: 0 })).toThrow(InvalidInputError)
    expect(() => scorer.offence('p', 'nonsense' as OffenceKind)).toThrow(InvalidInputError)
  })

  it('never grows a score when the clock steps back', () => {
    let now = 10_000_000
    const scorer = new PeerScorer({ clock: { now: () => now } })
    scorer.offence('p', 'bad-data')
    now -= PEER_SCORE_HALF_LIFE_MS
    expect(scorer.score('p')).toBe(OFFENCE_WEIGHT_BAD_DATA)
  })

  it('says disconnect for a newcomer a full ledger cannot record, when its one offence reaches the threshold', () => {
    const { scorer } = setup({ threshold: OFFENCE_WEIGHT_BAD_PROOF, maxPeers: 2 })
    for (const peer of ['a', 'b', 'a', 'b']) scorer.offence(peer, 'bad-proof')
    // Not recorded (no lighter score to displace), but past the threshold at once all the same.
    expect(scorer.offence('c', 'bad-proof')).toEqual({ score: OFFENCE_WEIGHT_BAD_PROOF, disconnect: true })
    expect(scorer.size).toBe(2)
  })
})
