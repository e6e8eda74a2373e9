/** Bits per key of each layer: with 4 probes, about 1.2% of the keys never added are reported as maybe held. */
const BITS_PER_KEY = 10
/** Probes per key: one per 32-bit word of the key's first 16 bytes. */
const PROBES = 4
/** Keys the first layer is sized for; each further layer is sized for twice the one before. */
const FIRST_LAYER_KEYS = 1 << 16

interface Layer {
  bits: Uint32Array
  /** Bit positions per layer minus one (a power of two minus one). */
  mask: number
  keys: number
  capacity: number
}

/**
 * A Bloom filter of 32-byte hashes (keccak-256 of trie nodes: uniform already, so their own bytes are the probe
 * positions and nothing is hashed again). `mayHold` is false only for a key never added; true may be wrong
 * (about 1.2% of the time per layer), so a caller checks a true against what it stands for. It grows by adding
 * layers of twice the size as keys arrive, so it needs no size up front: 10 bits a key, 1.7 MB for the
 * 1.36M nodes of a 1M-key trie. A key crafted to hit set bits only costs the caller its check.
 */
export class HashFilter {
  private readonly layers: Layer[] = []
  private count = 0

  /** Keys added. */
  get size(): number {
    return this.count
  }

  add(key: Uint8Array): void {
    this.addAt(key, 0)
  }

  /** `add` of the 32 bytes of `bytes` from `at`. */
  addAt(bytes: Uint8Array, at: number): void {
    let layer = this.layers.at(-1)
    if (layer === undefined || layer.keys >= layer.capacity) {
      layer = newLayer(layer === undefined ? FIRST_LAYER_KEYS : layer.capacity * 2)
      this.layers.push(layer)
    }
    for (let p = 0; p < PROBES; p++) {
      const bit = word(bytes, at + p * 4) & layer.mask
      layer.bits[bit >>> 5]! |= 1 << (bit & 31)
    }
    layer.keys++
    this.count++
  }

  /** False when `key` was never added; true when it may have been. */
  mayHold(key: Uint8Array): boolean {
    return this.mayHoldAt(key, 0)
  }

  /** `mayHold` of the 32 bytes of `bytes` from `at`. */
  mayHoldAt(bytes: Uint8Array, at: number): boolean {
    for (const layer of this.layers) if (inLayer(layer, bytes, at)) return true
    return false
  }
}

function newLayer(capacity: number): Layer {
  let bits = 32
  while (bits < capacity * BITS_PER_KEY) bits *= 2
  return { bits: new Uint32Array(bits / 32), mask: bits - 1, keys: 0, capacity }
}

function inLayer(layer: Layer, key: Uint8Array, at: number): boolean {
  for (let p = 0; p < PROBES; p++) {
    const bit = word(key, at + p * 4) & layer.mask
    if ((layer.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false
  }
  return true
}

/** The 32-bit word of `key` from byte `at` (unsigned). */
function word(key: Uint8Array, at: number): number {
  return ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0
}
