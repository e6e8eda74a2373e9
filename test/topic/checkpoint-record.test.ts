import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { describe, expect, it } from 'vitest'
import { InvalidCheckpointRecordError, InvalidInputError } from '../../src/errors.js'
import { encodeFrame } from '../../src/net/codec.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import {
  CHECKPOINT_RECORD_CODEC,
  CHECKPOINT_RECORD_DOMAIN,
  encodeCheckpointPayload,
  openCheckpoint,
  recordSignedCheckpoint,
  sealCheckpoint
} from '../../src/topic/checkpoint-record.js'
import { TopicStore } from '../../src/topic/topic-store.js'
import { keccak256 } from '../../src/trie/keccak.js'

const cp = { number: 41, root: new Uint8Array(32).fill(7), head: 44, headHash: new Uint8Array(32).fill(9) }

describe('checkpoint records', () => {
  it('round-trips a record signed by the publisher, from any relay', async () => {
    const key = await generateKeyPair('Ed25519')
    const publisher = peerIdFromPrivateKey(key)
    const sealed = await sealCheckpoint('news', cp, key)
    expect(sealed.signer.equals(publisher)).toBe(true)
    const opened = await openCheckpoint(sealed.envelope, { topic: 'news', publisher })
    expect(opened.checkpoint).toEqual(cp)
    expect(opened.signer.equals(publisher)).toBe(true)
    expect(opened.envelope).toEqual(sealed.envelope)
  })

  it('refuses a record signed by anyone but the publisher', async () => {
    const publisher = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const liar = await generateKeyPair('Ed25519')
    const forged = await sealCheckpoint('news', cp, liar)
    await expect(openCheckpoint(forged.envelope, { topic: 'news', publisher })).rejects.toThrow(InvalidCheckpointRecordError)
  })

  it('refuses a record for another topic', async () => {
    const key = await generateKeyPair('Ed25519')
    const sealed = await sealCheckpoint('sport', cp, key)
    await expect(openCheckpoint(sealed.envelope, { topic: 'news', publisher: peerIdFromPrivateKey(key) })).rejects.toThrow(
      /topic "sport"/
    )
  })

  it('refuses a record whose payload was changed after signing', async () => {
    const key = await generateKeyPair('Ed25519')
    const sealed = await sealCheckpoint('news', cp, key)
    const envelope = RecordEnvelope.createFromProtobuf(sealed.envelope)
    // The same signature over a payload naming a later checkpoint.
    const payload = encodeFrame([new TextEncoder().encode('news'), 42, cp.root, 44, cp.headHash] as never)
    const tampered = new RecordEnvelope({ ...envelope, payload }).marshal()
    await expect(openCheckpoint(tampered, { topic: 'news', publisher: peerIdFromPrivateKey(key) })).rejects.toThrow(
      InvalidCheckpointRecordError
    )
  })

  it('refuses an envelope signed for another domain (a libp2p peer record is not a checkpoint)', async () => {
    const key = await generateKeyPair('Ed25519')
    const payload = encodeFrame([new TextEncoder().encode('news'), 41, cp.root, 44, cp.headHash] as never)
    const other = await RecordEnvelope.seal(
      { domain: 'libp2p-peer-record', codec: new Uint8Array([3, 1]), marshal: () => payload, equals: () => false },
      key
    )
    await expect(openCheckpoint(other.marshal(), { topic: 'news' })).rejects.toThrow(InvalidCheckpointRecordError)
  })

  it('refuses empty, oversized and garbage bytes', async () => {
    await expect(openCheckpoint(new Uint8Array(0), { topic: 'news' })).rejects.toThrow(InvalidCheckpointRecordError)
    await expect(openCheckpoint(new Uint8Array(4096), { topic: 'news' })).rejects.toThrow(InvalidCheckpointRecordError)
    await expect(openCheckpoint(new Uint8Array([1, 2, 3, 4, 5]), { topic: 'news' })).rejects.toThrow(InvalidCheckpointRecordError)
  })

  it('will not sign a checkpoint whose head is below its number', async () => {
    const key = await generateKeyPair('Ed25519')
    await expect(sealCheckpoint('news', { ...cp, head: 40 }, key)).rejects.toThrow(InvalidInputError)
  })

  it('refuses a record signed in the checkpoint domain with another payload type', async () => {
    const key = await generateKeyPair('Ed25519')
    const payload = encodeCheckpointPayload('news', cp)
    const other = await RecordEnvelope.seal(
      { domain: CHECKPOINT_RECORD_DOMAIN, codec: new TextEncoder().encode('/dsfg/other/1'), marshal: () => payload, equals: () => false },
      key
    )
    await expect(openCheckpoint(other.marshal(), { topic: 'news', publisher: peerIdFromPrivateKey(key) })).rejects.toThrow(
      InvalidCheckpointRecordError
    )
  })

  it('refuses a signed record whose head is below its number', async () => {
    const key = await generateKeyPair('Ed25519')
    // sealCheckpoint will not sign it: the envelope is sealed by hand, as a buggy or hostile publisher could.
    const payload = encodeFrame([new TextEncoder().encode('news'), 41, cp.root, 40, cp.headHash] as never)
    const sealed = await RecordEnvelope.seal(
      { domain: CHECKPOINT_RECORD_DOMAIN, codec: CHECKPOINT_RECORD_CODEC, marshal: () => payload, equals: () => false },
      key
    )
    await expect(openCheckpoint(sealed.marshal(), { topic: 'news', publisher: peerIdFromPrivateKey(key) })).rejects.toThrow(
      InvalidCheckpointRecordError
    )
  })

  it('reports an abort as an abort, not as a bad record (whose sender would be blamed)', async () => {
    const sealed = await sealCheckpoint('news', cp, await generateKeyPair('Ed25519'))
    await expect(openCheckpoint(sealed.envelope, { topic: 'news', signal: AbortSignal.abort() })).rejects.toHaveProperty('name', 'AbortError')
  })

  it('signs and opens a checkpoint whose head is its number (no item after it)', async () => {
    const key = await generateKeyPair('Ed25519')
    const atHead = { ...cp, head: cp.number }
    const sealed = await sealCheckpoint('news', atHead, key)
    expect((await openCheckpoint(sealed.envelope, { topic: 'news', publisher: peerIdFromPrivateKey(key) })).checkpoint).toEqual(atHead)
  })
})

describe('recordSignedCheckpoint', () => {
  it('signs a head and head hash read together, even when an item lands between the checkpoint and the signing', async () => {
    const items = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]
    /** A store where a publish lands right after each checkpoint is recorded. */
    class Busy extends TopicStore {
      override async checkpoint(topic: string) {
        const recorded = await super.checkpoint(topic)
        await this.append(topic, items[2]!)
        return recorded
      }
    }
    const topics = new Busy(new MemoryStore())
    await topics.appendMany('news', items.slice(0, 2))
    const record = (await recordSignedCheckpoint(topics, 'news', await generateKeyPair('Ed25519')))!
    expect(record.checkpoint.number).toBe(1)
    expect(record.checkpoint.head).toBe(2)
    expect(record.checkpoint.headHash).toEqual(keccak256(items[2]!))
    expect((await topics.getCheckpointRecord('news'))?.envelope).toEqual(record.envelope)
  })

  it('returns the record the store keeps when it keeps one of the same checkpoint: the one it signed now is not kept', async () => {
    const topics = new TopicStore(new MemoryStore())
    await topics.appendMany('news', [Uint8Array.of(1)])
    const first = (await recordSignedCheckpoint(topics, 'news', await generateKeyPair('Ed25519')))!
    const again = (await recordSignedCheckpoint(topics, 'news', await generateKeyPair('Ed25519')))!
    expect(again.signer.equals(first.signer)).toBe(true)
    expect(again.envelope).toEqual(first.envelope)
    expect((await topics.getCheckpointRecord('news'))?.envelope).toEqual(first.envelope)
  })
})
