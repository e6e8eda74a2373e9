import type { PeerId, PrivateKey, Record as Libp2pRecord } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { MAX_CHECKPOINT_RECORD_BYTES } from '../constants.js'
import { InvalidCheckpointRecordError, InvalidInputError, ProtocolError } from '../errors.js'
import { decodeFrame, encodeFrame, expectBytes, expectList, expectUint } from '../net/codec.js'
import { decodeTopic, encodeTopic } from '../net/topic-protocols.js'
import { equalBytes } from '../util/bytes.js'
import type { Checkpoint } from './gossip.js'
import type { TopicStore } from './topic-store.js'

/**
 * The signature domain of a DSFG checkpoint record: libp2p's envelope signs the domain with the payload, so a
 * signature made for another kind of record (a peer record, say) can never pass as a checkpoint.
 */
export const CHECKPOINT_RECORD_DOMAIN = 'dsfg-checkpoint'

/**
 * The envelope's payload type. Not a registered multicodec: the envelope only requires that both ends agree,
 * and the domain already keeps it apart from libp2p's own records.
 */
export const CHECKPOINT_RECORD_CODEC = new TextEncoder().encode('/dsfg/checkpoint/1')

/**
 * A publisher's signed statement about a topic: items `0..number` have trie root `root`, and its head was
 * `head` with `keccak256(item[head]) = headHash`. The bytes (`envelope`) are what every node keeps and hands on:
 * a late joiner trusts the signature, not the peer that relayed it.
 */
export interface SignedCheckpoint {
  readonly topic: string
  readonly checkpoint: Checkpoint
  /** The peer whose key signed it. */
  readonly signer: PeerId
  /** The marshalled libp2p envelope, exactly as signed. */
  readonly envelope: Uint8Array
}

/** The record inside the envelope: RLP `[topic, number, root, head, headHash]`. */
class CheckpointPayload implements Libp2pRecord {
  readonly domain = CHECKPOINT_RECORD_DOMAIN
  readonly codec = CHECKPOINT_RECORD_CODEC
  private readonly bytes: Uint8Array

  constructor(topic: string, cp: Checkpoint) {
    this.bytes = encodeCheckpointPayload(topic, cp)
  }

  marshal(): Uint8Array {
    return this.bytes
  }

  equals(other: Libp2pRecord): boolean {
    return other instanceof CheckpointPayload && equalBytes(other.bytes, this.bytes)
  }
}

/** Signs `cp` for `topic` with `privateKey` (the publisher's node key). */
export async function sealCheckpoint(
  topic: string,
  cp: Checkpoint,
  privateKey: PrivateKey,
  options?: { signal?: AbortSignal }
): Promise<SignedCheckpoint> {
  try {
    checkCheckpoint(cp)
  } catch (err) {
    throw new InvalidInputError('cannot sign this checkpoint', { cause: err })
  }
  const envelope = await RecordEnvelope.seal(new CheckpointPayload(topic, cp), privateKey, options)
  return {
    topic,
    checkpoint: { number: cp.number, root: cp.root.slice(), head: cp.head, headHash: cp.headHash.slice() },
    signer: peerIdFromPublicKey(privateKey.publicKey),
    envelope: envelope.marshal()
  }
}

/**
 * Records `(head, root(head))` as `topic`'s checkpoint in `topics`, signs it with `privateKey` and keeps the
 * signed record there (what status replies hand to peers); `null` for a topic without items. When the store keeps
 * a record of the same checkpoint already, that record is kept and returned.
 */
export async function recordSignedCheckpoint(
  topics: TopicStore,
  topic: string,
  privateKey: PrivateKey,
  options?: { signal?: AbortSignal }
): Promise<SignedCheckpoint | null> {
  const cp = await topics.checkpoint(topic, options)
  if (cp === null) return null
  const state = (await topics.getCurrentTopicState(topic, options))!
  const record = await sealCheckpoint(topic, { number: cp.number, root: cp.root, head: state.head, headHash: state.headHash }, privateKey, options)
  if (await topics.putCheckpointRecord(topic, { number: cp.number, envelope: record.envelope }, options)) return record
  // Not newer than the record kept (the same checkpoint again): that one stands, and says who signed it.
  const kept = await topics.getCheckpointRecord(topic, options)
  return kept === null ? null : openCheckpoint(kept.envelope, { topic, signal: options?.signal })
}

export interface OpenCheckpointOptions {
  /** The record must be about this topic. */
  topic: string
  /** The record must be signed by this peer, when given. */
  publisher?: PeerId
  signal?: AbortSignal
}

/**
 * Opens a checkpoint record from untrusted bytes: bounded in size, a valid libp2p envelope whose signature
 * over the dsfg domain checks out, the dsfg payload type, a well-formed payload about `topic`, and (when
 * `publisher` is given) signed by that peer. Anything else is an `InvalidCheckpointRecordError`.
 */
export async function openCheckpoint(bytes: Uint8Array, options: OpenCheckpointOptions): Promise<SignedCheckpoint> {
  if (bytes.length === 0 || bytes.length > MAX_CHECKPOINT_RECORD_BYTES) {
    throw new InvalidCheckpointRecordError(`checkpoint record of ${bytes.length} bytes (1 to ${MAX_CHECKPOINT_RECORD_BYTES} allowed)`)
  }
  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, CHECKPOINT_RECORD_DOMAIN, { signal: options.signal })
  } catch (err) {
    options.signal?.throwIfAborted()
    throw new InvalidCheckpointRecordError('checkpoint record: not a validly signed envelope', { cause: err })
  }
  if (!equalBytes(envelope.payloadType, CHECKPOINT_RECORD_CODEC)) {
    throw new InvalidCheckpointRecordError('checkpoint record: wrong payload type')
  }
  const signer = peerIdFromPublicKey(envelope.publicKey)
  if (options.publisher !== undefined && !signer.equals(options.publisher)) {
    throw new InvalidCheckpointRecordError(`checkpoint record signed by ${signer.toString()}, not the topic's publisher`)
  }
  let topic: string
  let checkpoint: Checkpoint
  try {
    ;({ topic, checkpoint } = decodeCheckpointPayload(envelope.payload))
  } catch (err) {
    throw new InvalidCheckpointRecordError('checkpoint record: malformed payload', { cause: err })
  }
  if (topic !== options.topic) throw new InvalidCheckpointRecordError(`checkpoint record for topic ${JSON.stringify(topic)}`)
  return { topic, checkpoint, signer, envelope: bytes.slice() }
}

/** The signed payload of a checkpoint record: RLP `[topic, number, root, head, headHash]`. */
export function encodeCheckpointPayload(topic: string, cp: Checkpoint): Uint8Array {
  return encodeFrame([encodeTopic(topic), cp.number, cp.root, cp.head, cp.headHash] as never)
}

/** Decodes a checkpoint record's payload (untrusted bytes: a malformed one is a `ProtocolError`). */
export function decodeCheckpointPayload(payload: Uint8Array): { topic: string; checkpoint: Checkpoint } {
  const [topic, number, root, head, headHash] = expectList(decodeFrame(payload, 'checkpoint record'), 5, 'checkpoint record')
  const checkpoint = {
    number: expectUint(number, 'checkpoint number'),
    root: expectBytes(root, 'checkpoint root', 32).slice(),
    head: expectUint(head, 'checkpoint head'),
    headHash: expectBytes(headHash, 'checkpoint head hash', 32).slice()
  }
  checkCheckpoint(checkpoint)
  return { topic: decodeTopic(topic), checkpoint }
}

function checkCheckpoint(cp: Checkpoint): void {
  if (cp.head < cp.number) throw new ProtocolError('checkpoint: head below the checkpoint number')
  if (cp.root.length !== 32 || cp.headHash.length !== 32) throw new ProtocolError('checkpoint: hashes must be 32 bytes')
}
