import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { InvalidInputError, UsageError } from '../errors.js'
import { DEFAULT_TOPIC_QUORUM } from '../topic/sync/topic-sync.js'
import { topicId } from '../topic/topic-keys.js'
import { keccak256 } from '../trie/keccak.js'
import { fromHex, hashFromHex } from '../util/hex.js'
import type { OptionTable } from './args.js'

/**
 * A bad value on the command line is a usage error (exit 2), unlike the same mistake inside an input file
 * (exit 1): the hex helpers throw `InvalidInputError`, re-thrown here as `UsageError`.
 */
function asUsage<T>(parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (err instanceof InvalidInputError) throw new UsageError(err.message, { cause: err })
    throw err
  }
}

/** A 32-byte hash flag such as `--root 0x…`. */
export function hashFlag(value: string, name: string): Uint8Array {
  return asUsage(() => hashFromHex(value, name))
}

/** A byte-string flag such as `--key 0x…`. */
export function bytesFlag(value: string, name: string): Uint8Array {
  return asUsage(() => fromHex(value, name))
}

/** The trie key for a user key: itself, or its keccak-256 hash under `--secure` (Ethereum's secure trie). */
export function trieKey(key: Uint8Array, secure: boolean): Uint8Array {
  return secure ? keccak256(key) : key
}

/** The shared description of `--secure`. */
export const SECURE_DESCRIPTION = 'hash keys with keccak-256 before use (Ethereum "secure trie")'
/** The shared description of `--data`. */
export const DATA_DESCRIPTION = 'store: a LevelDB directory (created if absent), or :memory:'

/** The `--data` of commands that start a node: the directory also keeps the node's key, hence its peer id. */
export const NODE_DATA_DESCRIPTION =
  'store: a LevelDB directory (created if absent), also keeping the node key node.key; or :memory: (new peer id)'

/** A multiaddr flag: `--peer` by default, or `--listen`. */
export function multiaddrFlag(value: string, name = '--peer'): Multiaddr {
  try {
    return multiaddr(value)
  } catch (err) {
    throw new UsageError(`${name} ${JSON.stringify(value)} is not a multiaddr`, { cause: err })
  }
}

/** A whole number flag such as `--from N`, at least `min`. */
export function numberFlag(value: string | undefined, name: string, min = 0): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}`)
  }
  return n
}

/** A topic name flag: 1 to 256 bytes of well-formed Unicode (what a store and the wire accept), checked before any store opens. */
export function topicFlag(value: string): string {
  try {
    topicId(value)
  } catch (err) {
    throw new UsageError(`--topic ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}: ${(err as Error).message}`, { cause: err })
  }
  return value
}

/** `serve`'s `--topic` flags: each a `topicFlag`, none given twice. */
export function topicFlags(values: readonly string[]): string[] {
  const seen = new Set<string>()
  for (const value of values) {
    topicFlag(value)
    if (seen.has(value)) throw new UsageError(`--topic ${JSON.stringify(value)} is given twice`)
    seen.add(value)
  }
  return [...values]
}

/** A peer id flag such as `--publisher 12D3Koo…`. */
export function peerIdFlag(value: string, name: string): PeerId {
  try {
    return peerIdFromString(value)
  } catch (err) {
    throw new UsageError(`${name} ${JSON.stringify(value)} is not a peer id`, { cause: err })
  }
}

/** The options that say whom a followed topic trusts, shared by the commands that follow topics. */
export const TRUST_OPTIONS = {
  publisher: {
    type: 'string',
    value: 'PEERID',
    description: "the topic's publisher: only items and checkpoints it signed are accepted, its checkpoints decide"
  },
  quorum: {
    type: 'string',
    value: 'N',
    description: `without a publisher: peers that must report a head before it is the target (default ${DEFAULT_TOPIC_QUORUM})`
  }
} as const satisfies OptionTable

/** Whom a topic trusts, in the fields of `TopicConfig`: its publisher, or else a quorum of peers. */
export type TopicTrust = { readonly publisher: PeerId } | { readonly quorum: number }

/** `--publisher` and `--quorum` as a `TopicTrust`; a quorum of `DEFAULT_TOPIC_QUORUM` when neither is given. */
export function trustFlags(options: { publisher: string | undefined; quorum: string | undefined }): TopicTrust {
  if (options.publisher !== undefined && options.quorum !== undefined) {
    // A publisher's checkpoints set the target; the quorum only counts peers when there is no publisher.
    throw new UsageError('give at most one of --publisher and --quorum')
  }
  if (options.publisher !== undefined) return { publisher: peerIdFlag(options.publisher, '--publisher') }
  return { quorum: numberFlag(options.quorum, '--quorum', 1) ?? DEFAULT_TOPIC_QUORUM }
}

/** A topic's trust from the flags: its `TopicTrust`, and whether a flag said it (`topicTrust` tells them apart). */
export interface TopicTrustFlags {
  readonly trust: TopicTrust
  readonly given: boolean
  /** The flag that gave it, as typed, when that was this topic's own (`--publisher TOPIC=PEERID`). */
  readonly flag?: string
}

/**
 * `serve`'s trust flags for each of `topics`. `--publisher PEERID` (once) or `--quorum N` apply to every topic, as
 * `trustFlags` reads them; `--publisher TOPIC=PEERID` (repeatable) is that topic's publisher whatever the others
 * say, so one process can serve topics of different publishers, and a topic this node published beside them.
 * A topic name may hold `=`; a peer id never does, so the value splits at its last one.
 */
export function serveTrustFlags(options: { publisher: readonly string[]; quorum: string | undefined }, topics: readonly string[]): Map<string, TopicTrustFlags> {
  const everyTopic: string[] = []
  const perTopic = new Map<string, TopicTrustFlags>()
  for (const value of options.publisher) {
    const split = value.lastIndexOf('=')
    if (split < 0) {
      everyTopic.push(value)
      continue
    }
    const topic = value.slice(0, split)
    const name = `--publisher ${topic}=…`
    if (topic === '') throw new UsageError(`--publisher ${JSON.stringify(value)} names no topic before its "="`)
    if (!topics.includes(topic)) throw new UsageError(`${name}: ${JSON.stringify(topic)} is not one of the --topic flags`)
    if (perTopic.has(topic)) throw new UsageError(`${name} is given twice`)
    perTopic.set(topic, { trust: { publisher: peerIdFlag(value.slice(split + 1), '--publisher') }, given: true, flag: `--publisher ${value}` })
  }
  if (everyTopic.length > 1) {
    throw new UsageError('give --publisher PEERID at most once (it applies to every --topic), and --publisher TOPIC=PEERID for one topic')
  }
  if ((everyTopic.length > 0 || options.quorum !== undefined) && topics.length > 0 && topics.every((t) => perTopic.has(t))) {
    const flag = everyTopic.length > 0 ? '--publisher PEERID' : '--quorum'
    throw new UsageError(`${flag} applies to no topic: every --topic has a --publisher TOPIC=PEERID of its own`)
  }
  const shared = { trust: trustFlags({ publisher: everyTopic[0], quorum: options.quorum }), given: everyTopic.length > 0 || options.quorum !== undefined }
  const out = new Map<string, TopicTrustFlags>()
  for (const topic of topics) {
    out.set(topic, perTopic.get(topic) ?? shared)
  }
  return out
}

/** Whether `--publisher` or `--quorum` was given: both only make sense with a topic. */
export function trustGiven(options: { publisher: string | readonly string[] | undefined; quorum: string | undefined }): boolean {
  const publisher = typeof options.publisher === 'string' ? [options.publisher] : (options.publisher ?? [])
  return publisher.length > 0 || options.quorum !== undefined
}
