import { isDeepStrictEqual } from 'node:util'
import { RLP } from '@ethereumjs/rlp'
import { InvalidNodeError, ProtocolError } from '../../src/errors.js'
import { decodeFrame, encodeFrame, Status } from '../../src/net/codec.js'
import {
  decodeNodesRequest,
  decodeNodesResponse,
  encodeNodesRequest,
  encodeNodesResponse
} from '../../src/net/nodes-protocol.js'
import {
  decodeContentsRequest,
  decodeContentsResponse,
  decodeHashesRequest,
  decodeHashesResponse,
  decodeStatusRequest,
  decodeStatusResponse,
  encodeContentsRequest,
  encodeContentsResponse,
  encodeHashesRequest,
  encodeHashesResponse,
  encodeStatusRequest,
  encodeStatusResponse
} from '../../src/net/topic-protocols.js'
import { decodeCheckpointPayload, encodeCheckpointPayload } from '../../src/topic/checkpoint-record.js'
import { decodeGossipItem, encodeGossipItem } from '../../src/topic/gossip.js'
import { encodeCompact } from '../../src/trie/nibbles.js'
import { type ChildRef, decodeNode, type RlpItem, type TrieNode } from '../../src/trie/node.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { fuzzFrame, HOSTILE_FRAMES } from './mutate.js'

/**
 * Fuzzes every wire decoder: each frame must either decode to a value that survives a re-encode and decode
 * unchanged, or be rejected with the decoder's own typed error. Anything else (another error class, a slow
 * case, runaway heap) fails with the seed, case number and frame in hex so the case replays.
 */

/** One decoder under test, with the encoder that must reproduce what it accepted. */
export interface FuzzTarget {
  name: string
  /** The only error class the decoder may throw on bad input. */
  error: abstract new (...args: never[]) => Error
  /** Valid encodings to mutate. */
  seeds: Uint8Array[]
  decode: (frame: Uint8Array) => unknown
  reencode: (value: unknown) => Uint8Array
}

export interface FuzzOptions {
  cases: number
  seed: number
  /** Slowest single decode allowed. @default DEFAULT_MAX_CASE_MS */
  maxCaseMs?: number
  /** Heap growth allowed over the whole run, measured without forcing a collection. @default 128 MiB */
  maxHeapGrowthBytes?: number
}

export interface FuzzReport {
  cases: number
  accepted: number
  rejected: number
  slowestMs: number
  heapGrowthBytes: number
}

/**
 * Far above a normal decode (microseconds) and the ~150 ms of the stack-overflowing hostile frame, so only a
 * real hang or blow-up trips it, not a GC pause on a machine busy with the rest of `npm test`.
 */
export const DEFAULT_MAX_CASE_MS = 2_000
const DEFAULT_MAX_HEAP_GROWTH_BYTES = 128 * 1024 * 1024

/** Every wire decoder rejects with `ProtocolError`; only the trie node codec has its own class. */
function target<T>(
  name: string,
  seeds: Uint8Array[],
  decode: (frame: Uint8Array) => T,
  encode: (value: T) => Uint8Array,
  error: FuzzTarget['error'] = ProtocolError
): FuzzTarget {
  return { name, error, seeds, decode, reencode: (value) => encode(value as T) }
}

const h = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const state = { lowest: 3, head: 900, headHash: h(1), checkpoint: { number: 512, root: h(2) } }
const items = [
  { n: 10, data: Uint8Array.of(1) },
  { n: 12, data: new Uint8Array(40).fill(7) }
]

/** The request window the response decoders check replies against. */
const FROM = 10
const AMOUNT = 8

function childToRlp(child: ChildRef | null): RlpItem {
  if (child === null) return new Uint8Array(0)
  return child.kind === 'hash' ? child.hash : nodeToRlp(child.node)
}

/** The inverse of `nodeFromRlp`: src/ has no node encoder, since nodes travel and rest as their blobs. */
function nodeToRlp(node: TrieNode): RlpItem {
  switch (node.kind) {
    case 'leaf':
      return [encodeCompact(node.path, true), node.value]
    case 'extension':
      return [encodeCompact(node.path, false), childToRlp(node.child)]
    case 'branch':
      return [...node.children.map(childToRlp), node.value ?? new Uint8Array(0)]
    default: {
      const exhaustive: never = node
      throw new TypeError(`unknown node ${String(exhaustive)}`)
    }
  }
}

const encodeNode = (node: TrieNode): Uint8Array => RLP.encode(nodeToRlp(node) as Parameters<typeof RLP.encode>[0])
const leaf = (path: number[], value: Uint8Array): TrieNode => ({ kind: 'leaf', path: Uint8Array.from(path), value })
const branchChildren = Array.from({ length: 16 }, (_, i): ChildRef | null =>
  i % 3 === 0 ? { kind: 'hash', hash: h(i) } : i === 5 ? { kind: 'embedded', node: leaf([1], Uint8Array.of(9)) } : null
)

/** Every decoder that reads bytes from a peer or from disk, with valid seeds for each. */
export const FUZZ_TARGETS: FuzzTarget[] = [
  target(
    'decodeFrame',
    [encodeFrame([h(1), [Uint8Array.of(1), []]]), encodeFrame(new Uint8Array(60))],
    (f) => decodeFrame(f, 'fuzz'),
    encodeFrame
  ),
  target('decodeNodesRequest', [encodeNodesRequest([h(1), h(2)])], (f) => decodeNodesRequest(f, 16), encodeNodesRequest),
  target(
    'decodeNodesResponse',
    [encodeNodesResponse(Status.OK, [Uint8Array.of(1, 2, 3), new Uint8Array(70)]), encodeNodesResponse(Status.UNAVAILABLE)],
    (f) => decodeNodesResponse(f, 16),
    (v) => encodeNodesResponse(v.code, v.nodes)
  ),
  target('decodeStatusRequest', [encodeStatusRequest('news/β')], decodeStatusRequest, encodeStatusRequest),
  target(
    'decodeStatusResponse',
    [encodeStatusResponse(Status.OK, state), encodeStatusResponse(Status.RATE_LIMITED)],
    decodeStatusResponse,
    (v) => encodeStatusResponse(v.code, v.state ?? undefined)
  ),
  target(
    'decodeContentsRequest',
    [encodeContentsRequest('t', 1000, 64), encodeContentsRequest('t', 5, 9, h(2))],
    decodeContentsRequest,
    (v) => encodeContentsRequest(v.topic, v.from, v.amount, v.root)
  ),
  target(
    'decodeContentsResponse',
    [encodeContentsResponse(Status.OK, items), encodeContentsResponse(Status.UNAVAILABLE)],
    (f) => decodeContentsResponse(f, FROM, AMOUNT),
    (v) => encodeContentsResponse(v.code, v.items, v.proof)
  ),
  target(
    'decodeHashesRequest',
    [encodeHashesRequest('t', 5, 900)],
    decodeHashesRequest,
    (v) => encodeHashesRequest(v.topic, v.from, v.to)
  ),
  target(
    'decodeHashesResponse',
    [encodeHashesResponse(Status.OK, [h(5), h(6)]), encodeHashesResponse(Status.INVALID_REQUEST)],
    (f) => decodeHashesResponse(f, FROM, FROM + AMOUNT - 1),
    (v) => encodeHashesResponse(v.code, v.hashes)
  ),
  target(
    'decodeCheckpointPayload',
    [encodeCheckpointPayload('news', { number: 512, root: h(3), head: 700, headHash: h(4) })],
    decodeCheckpointPayload,
    (v) => encodeCheckpointPayload(v.topic, v.checkpoint)
  ),
  target('decodeGossipItem', [encodeGossipItem(items[1]!)], decodeGossipItem, encodeGossipItem),
  target(
    'decodeNode',
    [
      encodeNode(leaf([1, 2, 3], new Uint8Array(40).fill(1))),
      encodeNode({ kind: 'extension', path: Uint8Array.of(4, 5), child: { kind: 'hash', hash: h(8) } }),
      encodeNode({ kind: 'branch', children: branchChildren, value: Uint8Array.of(1) })
    ],
    decodeNode,
    encodeNode,
    InvalidNodeError
  )
]

/** Hex of the frame, cut short past 512 bytes: the seed and case number replay the rest. */
function describe(frame: Uint8Array): string {
  if (frame.length <= 512) return toHex(frame)
  return `${toHex(frame.subarray(0, 256))}… (${frame.length} bytes)`
}

/** Throws, naming the decoder, seed, case and frame, when any case breaks the contract above. */
export function runFuzz(fuzz: FuzzTarget, options: FuzzOptions): FuzzReport {
  const maxCaseMs = options.maxCaseMs ?? DEFAULT_MAX_CASE_MS
  const maxHeapGrowth = options.maxHeapGrowthBytes ?? DEFAULT_MAX_HEAP_GROWTH_BYTES
  const prng = new Prng(options.seed)
  const report: FuzzReport = { cases: 0, accepted: 0, rejected: 0, slowestMs: 0, heapGrowthBytes: 0 }
  const heapBefore = process.memoryUsage().heapUsed
  for (let i = 0; i < options.cases; i++) {
    const frame = HOSTILE_FRAMES[i] ?? fuzzFrame(prng, fuzz.seeds)
    const fail = (why: string, cause?: unknown): Error =>
      new Error(`${fuzz.name} (seed ${options.seed}, case ${i}): ${why}; frame ${describe(frame)}`, { cause })
    const started = performance.now()
    let value: unknown
    let rejected = false
    try {
      value = fuzz.decode(frame)
    } catch (err) {
      if (!(err instanceof fuzz.error)) throw fail(`threw ${String(err)}`, err)
      rejected = true
    }
    const ms = performance.now() - started
    if (ms > maxCaseMs) throw fail(`took ${ms.toFixed(1)} ms`)
    report.slowestMs = Math.max(report.slowestMs, ms)
    report.cases++
    if (rejected) {
      report.rejected++
      continue
    }
    report.accepted++
    let again: unknown
    try {
      again = fuzz.decode(fuzz.reencode(value))
    } catch (err) {
      throw fail('accepted a value that does not re-encode', err)
    }
    if (!isDeepStrictEqual(again, value)) throw fail('accepted a value that changes when re-encoded')
  }
  report.heapGrowthBytes = process.memoryUsage().heapUsed - heapBefore
  if (report.heapGrowthBytes > maxHeapGrowth) {
    throw new Error(`${fuzz.name} (seed ${options.seed}): heap grew ${report.heapGrowthBytes} bytes over ${options.cases} cases`)
  }
  return report
}
