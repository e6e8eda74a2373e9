import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { UsageError } from '../../src/errors.js'
import { serveTrustFlags, type TopicTrustFlags, topicFlags } from '../../src/cli/flags.js'

let a: string
let b: string

beforeAll(async () => {
  a = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  b = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

/** Each topic's trust as plain text: `publisher:<id>` or `quorum:<n>`, and `!` when a flag gave it. */
function read(flags: Map<string, TopicTrustFlags>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [topic, { trust, given }] of flags) {
    out[topic] = ('publisher' in trust ? `publisher:${trust.publisher.toString()}` : `quorum:${trust.quorum}`) + (given ? '!' : '')
  }
  return out
}

describe('serveTrustFlags', () => {
  it('applies --publisher PEERID and --quorum N to every topic, and the default quorum to every topic without a flag', () => {
    expect(read(serveTrustFlags({ publisher: [a], quorum: undefined }, ['x', 'y']))).toEqual({ x: `publisher:${a}!`, y: `publisher:${a}!` })
    expect(read(serveTrustFlags({ publisher: [], quorum: '3' }, ['x', 'y']))).toEqual({ x: 'quorum:3!', y: 'quorum:3!' })
    expect(read(serveTrustFlags({ publisher: [], quorum: undefined }, ['x']))).toEqual({ x: 'quorum:1' })
  })

  it('gives a topic named by --publisher TOPIC=PEERID that publisher, and the others what the rest of the flags say', () => {
    expect(read(serveTrustFlags({ publisher: [`y=${b}`], quorum: undefined }, ['x', 'y']))).toEqual({ x: 'quorum:1', y: `publisher:${b}!` })
    expect(read(serveTrustFlags({ publisher: [`y=${b}`, a], quorum: undefined }, ['x', 'y']))).toEqual({ x: `publisher:${a}!`, y: `publisher:${b}!` })
    // A quorum for the rest beside one topic's publisher: the two say different topics' trust, so they do not clash.
    expect(read(serveTrustFlags({ publisher: [`y=${b}`], quorum: '2' }, ['x', 'y']))).toEqual({ x: 'quorum:2!', y: `publisher:${b}!` })
  })

  it('splits at the last "=", as a topic name may hold one and a peer id never does', () => {
    expect(read(serveTrustFlags({ publisher: [`k=v=${a}`], quorum: undefined }, ['k=v']))).toEqual({ 'k=v': `publisher:${a}!` })
  })

  it('refuses what cannot be meant, in one line each', () => {
    const refusal = (publisher: string[], topics: string[], quorum?: string) => {
      try {
        serveTrustFlags({ publisher, quorum }, topics)
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError)
        return (err as Error).message
      }
      throw new Error('accepted')
    }
    expect(refusal([a, b], ['x'])).toMatch(/^give --publisher PEERID at most once/)
    expect(refusal([a], ['x'], '2')).toBe('give at most one of --publisher and --quorum')
    expect(refusal([`z=${a}`], ['x'])).toBe('--publisher z=…: "z" is not one of the --topic flags')
    expect(refusal([`x=${a}`, `x=${b}`], ['x'])).toBe('--publisher x=… is given twice')
    expect(refusal([`=${a}`], ['x'])).toMatch(/names no topic before its "="$/)
    expect(refusal(['x=nope'], ['x'])).toBe('--publisher "nope" is not a peer id')
    // A flag for every topic when every topic has its own says nothing: refused, not silently ignored.
    expect(refusal([`x=${a}`, b], ['x'])).toBe('--publisher PEERID applies to no topic: every --topic has a --publisher TOPIC=PEERID of its own')
    expect(refusal([`x=${a}`], ['x'], '2')).toBe('--quorum applies to no topic: every --topic has a --publisher TOPIC=PEERID of its own')
  })

  it('keeps the flag as typed for a topic of its own, for a refusal to quote', () => {
    expect(serveTrustFlags({ publisher: [`x=${a}`], quorum: undefined }, ['x']).get('x')?.flag).toBe(`--publisher x=${a}`)
    expect(serveTrustFlags({ publisher: [a], quorum: undefined }, ['x']).get('x')?.flag).toBeUndefined()
  })
})

describe('topicFlags', () => {
  it('takes names a store takes, each once, and refuses others before any store opens', () => {
    expect(topicFlags(['a', 'k=v', 'é'])).toEqual(['a', 'k=v', 'é'])
    expect(() => topicFlags(['a', 'a'])).toThrow(new UsageError('--topic "a" is given twice'))
    expect(() => topicFlags(['x'.repeat(257)])).toThrow(UsageError)
    expect(() => topicFlags(['x'.repeat(257)])).toThrow(/: topic must be 1 to 256 UTF-8 bytes, got 257$/)
    expect(() => topicFlags([''])).toThrow(/^--topic "": topic must be 1 to 256 UTF-8 bytes, got 0$/)
    expect(() => topicFlags(['\ud800'])).toThrow(/topic must be well-formed Unicode$/)
  })
})
