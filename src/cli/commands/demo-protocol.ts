/**
 * What `dsfg demo` and its child processes (`dsfg demo-node --role …`) say to each other: JSON lines both
 * ways, events on the child's stdout and commands on its stdin. Also the demo's item generator, shared so the
 * parent can check the joiner's items against what the publisher was told to publish.
 */
import type { Writable } from 'node:stream'
import { Prng } from '../../util/prng.js'
import { writeJson } from '../io.js'

export const DEMO_ROLES = ['publisher', 'server', 'joiner'] as const
export type DemoRole = (typeof DEMO_ROLES)[number]

/**
 * Item sizes: a few hundred bytes, like chat messages or small transactions. Large enough that every leaf of
 * the topic trie is its own hashed node (an RLP leaf under 32 bytes would be embedded in its parent).
 */
export const DEMO_ITEM_MIN_BYTES = 100
export const DEMO_ITEM_MAX_BYTES = 300

/** Between two publisher checkpoints: often enough that the joiner's trie sync is re-targeted on the way. */
export const DEMO_CHECKPOINT_INTERVAL_MS = 2_000

/** The seed of the generated history; the live items come from `seed + 1`. Fixed, so every run is the same. */
export const DEMO_SEED = 1

/** A checkpoint as a child reports it. */
export interface DemoCheckpoint {
  number: number
  root: string
}

/** What a child writes on stdout, one object per line. */
export type DemoEvent =
  /** The node is listening (every role, first). */
  | { event: 'listening'; peerId: string; addrs: string[] }
  /** Publisher: the history is in its store and checkpointed; live publishing starts now. */
  | { event: 'generated'; head: number; root: string; seconds: number }
  /** Followers: our head or mode changed (at most a few per second). */
  | { event: 'head'; head: number; mode: string }
  /** Joiner: a publisher checkpoint was received, verified against our items, or did not match them. */
  | { event: 'checkpoint'; number: number; status: string }
  /** Joiner: checkpoint sync (the topic trie at a checkpoint) started, re-targeted, was adopted, or failed. */
  | { event: 'trie'; what: 'started' | 'retarget' | 'adopted' | 'failed'; number: number; error?: string }
  /** Joiner: the trie sync's counters (at most once a second). */
  | { event: 'trie-progress'; checkpoint: number; nodes: number; bytes: number; pending: number }
  /** Followers: the topic reached its target for the first time (`sync:complete`). */
  | { event: 'synced'; head: number; seconds: number }
  /** Joiner: a peer sent data that failed verification. */
  | { event: 'penalised'; peer: string; reason: string }
  /** Publisher: live publishing stopped; its final head, checkpointed, and that root. */
  | { event: 'published'; head: number; root: string; liveItems: number; checkpoints: number }
  /** Joiner: proofs of the asked items against our root at `head`. */
  | { event: 'proofs'; head: number; root: string; proofs: { n: number; proof: string[] }[] }
  /** Every role, last: the node stopped; its head and root, and the CPU time the process used. */
  | { event: 'stopped'; head: number; root: string; cpuSeconds: number }

export type DemoEventName = DemoEvent['event']
export type DemoEventOf<E extends DemoEventName> = Extract<DemoEvent, { event: E }>

/** What the parent writes on a child's stdin. End of input means `stop` too (the parent is gone). */
export type DemoCommand =
  /** Publisher: stop publishing live items, checkpoint the head and report `published`. */
  | { cmd: 'stop-publishing' }
  /** Joiner: once our head reaches `head`, prove `items` against our root and report `proofs`. */
  | { cmd: 'prove'; head: number; items: number[] }
  /** Every role: stop the node, close the store and exit 0. */
  | { cmd: 'stop' }

export function writeEvent(out: Writable, event: DemoEvent): Promise<void> {
  return writeJson(out, event)
}

/** One demo item: `DEMO_ITEM_MIN_BYTES` to `DEMO_ITEM_MAX_BYTES` random bytes. */
export function demoItem(prng: Prng): Uint8Array {
  return prng.bytes(DEMO_ITEM_MIN_BYTES + prng.int(DEMO_ITEM_MAX_BYTES - DEMO_ITEM_MIN_BYTES + 1))
}

/** The generator of the history (items `0..history-1`) and the one of the live items that follow it. */
export function demoStreams(seed: number): { history: Prng; live: Prng } {
  return { history: new Prng(seed), live: new Prng(seed + 1) }
}

/**
 * The bytes the publisher published as items `numbers` (history from `seed`, live items after `history`
 * from `seed + 1`, in order), regenerated: what the parent checks the joiner's proven items against.
 */
export function expectedItems(seed: number, history: number, numbers: readonly number[]): Map<number, Uint8Array> {
  const wanted = new Set(numbers)
  const last = Math.max(-1, ...numbers)
  const streams = demoStreams(seed)
  const out = new Map<number, Uint8Array>()
  for (let n = 0; n <= last; n++) {
    const data = demoItem(n < history ? streams.history : streams.live)
    if (wanted.has(n)) out.set(n, data)
  }
  return out
}
