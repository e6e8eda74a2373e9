import { RLP } from '@ethereumjs/rlp'
import type { RlpItem } from '../../src/trie/node.js'
import type { Prng } from '../../src/util/prng.js'

/**
 * Frame generators for the decoder fuzzer: random bytes, and valid encodings damaged the ways a hostile or
 * broken peer would damage them. Everything draws from one seeded `Prng`, so a failing case replays from its
 * seed alone.
 */

/** RLP header of a string (`0x80`) or list (`0xc0`) whose payload is `length` bytes. */
export function rlpHeader(base: 0x80 | 0xc0, length: number): Uint8Array {
  if (length < 56) return Uint8Array.of(base + length)
  const len: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) len.unshift(n % 256)
  return Uint8Array.of(base + 55 + len.length, ...len)
}

/**
 * `inner` (an empty list by default) wrapped in `depth` lists, built without recursion so the generator
 * itself cannot overflow the stack the decoders are being tested against.
 */
export function deeplyNested(depth: number, inner: Uint8Array = Uint8Array.of(0xc0)): Uint8Array {
  // Lay the headers out back to front: each wraps everything already written.
  const headers: Uint8Array[] = []
  let length = inner.length
  for (let i = 0; i < depth; i++) {
    const header = rlpHeader(0xc0, length)
    headers.push(header)
    length += header.length
  }
  const out = new Uint8Array(length)
  let at = 0
  for (let i = headers.length - 1; i >= 0; i--) {
    out.set(headers[i]!, at)
    at += headers[i]!.length
  }
  out.set(inner, at)
  return out
}

/** Offsets of every RLP header in a well-formed encoding: where a length prefix can be corrupted. */
function headerOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = []
  const walk = (start: number, end: number): void => {
    let at = start
    while (at < end) {
      const b = bytes[at]!
      offsets.push(at)
      if (b < 0x80) {
        at += 1
        continue
      }
      const isList = b >= 0xc0
      const short = b - (isList ? 0xc0 : 0x80)
      let headerLength = 1
      let payload = short
      if (short > 55) {
        headerLength += short - 55
        payload = 0
        for (let i = 1; i < headerLength; i++) payload = payload * 256 + (bytes[at + i] ?? 0)
      }
      if (isList) walk(at + headerLength, Math.min(end, at + headerLength + payload))
      at += headerLength + payload
    }
  }
  walk(0, bytes.length)
  return offsets
}

function pick<T>(prng: Prng, items: readonly T[]): T {
  return items[prng.int(items.length)]!
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** A small random RLP item: the raw material for tampering with a decoded list. */
function randomItem(prng: Prng, depth = 0): RlpItem {
  const roll = prng.int(depth > 2 ? 3 : 5)
  if (roll === 0) return new Uint8Array(0)
  if (roll === 1) return prng.bytes(pick(prng, [1, 2, 8, 31, 32, 33, 60]))
  if (roll === 2) return Uint8Array.of(prng.int(256))
  return Array.from({ length: prng.int(roll === 3 ? 4 : 18) }, () => randomItem(prng, depth + 1))
}

/** Replaces, drops, duplicates or inserts one element somewhere in a decoded RLP tree, in place. */
function tamper(prng: Prng, item: RlpItem[]): void {
  let list = item
  while (list.length > 0 && prng.int(2) === 0) {
    const child = list[prng.int(list.length)]!
    if (!Array.isArray(child)) break
    list = child
  }
  const at = prng.int(list.length + 1)
  switch (prng.int(4)) {
    case 0:
      list.splice(at, 1, randomItem(prng))
      break
    case 1:
      list.splice(at, 1)
      break
    case 2:
      if (at < list.length) list.splice(at, 0, list[at]!)
      break
    default:
      list.splice(at, 0, randomItem(prng))
  }
}

/** A declared length far beyond the bytes that follow: the decoder must not trust it for an allocation. */
function hugeLength(prng: Prng, rest: Uint8Array): Uint8Array {
  const lengthOfLength = 1 + prng.int(8)
  const prefix = (prng.int(2) === 0 ? 0xb7 : 0xf7) + lengthOfLength
  const length = Uint8Array.from({ length: lengthOfLength }, (_, i) => (i === 0 ? 0x80 | prng.int(128) : prng.int(256)))
  return concat(Uint8Array.of(prefix), length, rest.subarray(0, prng.int(rest.length + 1)))
}

/**
 * Hostile frames every run starts with, whatever its seed: nesting past the JS stack (the decoders must turn
 * the `RangeError` into their typed error) and lengths declaring far more bytes than follow. Kept small: the
 * cost of deep nesting grows with depth times size (see the known-issue test in decoders.soak.test.ts).
 */
export const HOSTILE_FRAMES: readonly Uint8Array[] = [
  deeplyNested(1_000),
  deeplyNested(11_000),
  Uint8Array.of(0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
  Uint8Array.of(0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0),
  Uint8Array.of(0xbb, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0xfb, 0x00, 0x00, 0x00, 0x40, 0xc0)
]

/** One fuzz frame: random, or a seed mutated (or wrapped in a list) by one of the strategies above. */
export function fuzzFrame(prng: Prng, seeds: readonly Uint8Array[]): Uint8Array {
  const seed = pick(prng, seeds)
  switch (prng.int(10)) {
    case 0:
      return prng.bytes(prng.int(97))
    case 1: {
      const out = seed.slice()
      for (let i = 1 + prng.int(4); i > 0 && out.length > 0; i--) out[prng.int(out.length)] = prng.int(256)
      return out
    }
    case 2: {
      const out = seed.slice()
      for (let i = 1 + prng.int(3); i > 0 && out.length > 0; i--) out[prng.int(out.length)]! ^= 1 << prng.int(8)
      return out
    }
    case 3:
      return seed.slice(0, prng.int(seed.length + 1))
    case 4:
      return concat(seed, prng.bytes(1 + prng.int(16)))
    case 5: {
      const out = seed.slice()
      const at = pick(prng, headerOffsets(out))
      out[at] = pick(prng, [0x80, 0xb7, 0xb8, 0xbf, 0xc0, 0xf7, 0xf8, 0xff, prng.int(256)])
      if (at + 1 < out.length && prng.int(2) === 0) out[at + 1] = pick(prng, [0x00, 0x01, 0x37, 0x38, 0xff])
      return out
    }
    case 6: {
      const decoded = RLP.decode(seed) as RlpItem
      if (!Array.isArray(decoded)) return seed
      for (let i = 1 + prng.int(3); i > 0; i--) tamper(prng, decoded)
      return RLP.encode(decoded as Parameters<typeof RLP.encode>[0])
    }
    case 7:
      return hugeLength(prng, seed)
    case 8:
      return concat(rlpHeader(0xc0, seed.length), seed)
    default:
      return concat(seed.subarray(0, prng.int(seed.length + 1)), pick(prng, seeds))
  }
}
