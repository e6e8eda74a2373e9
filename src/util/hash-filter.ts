/**
 * Bits per key of each layer, at least: a layer's bits are rounded up to a power of two, 16 a key with the
 * layers' sizes. With 4 probes a full layer reports about 0.24% of the keys never added as maybe held.
 */
const BITS_PER_KEY = 10
/** Probes per key: one per 32-bit word of the key's first 16 bytes (`inLayer` reads the four without a loop). */
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
 * (about 0.24% of the time per full layer), so a caller checks a true against what it stands for. It grows by
 * adding layers of twice the size as keys arrive, so it needs no size up front: 16 bits a key of the layers'
 * room, 4.1 MB for the 1.36M nodes of a 1M-key trie. A key crafted to hit set bits only costs the caller its check.
 */
export class HashFilter {
  /**
   * Never empty: the first layer is made with the filter (an empty array, then one of layers, had the compiled
   * `mayHoldAt` thrown away at the first key added).
   */
  private readonly layers: Layer[] = [newLayer(FIRST_LAYER_KEYS)]
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
    let layer = this.layers[this.layers.length - 1]!
    if (layer.keys >= layer.capacity) layer = this.addLayer(layer.capacity)
    for (let p = 0; p < PROBES; p++) {
      const bit = word(bytes, at + p * 4) & layer.mask
      layer.bits[bit >>> 5]! |= 1 << (bit & 31)
    }
    layer.keys++
    this.count++
  }

  /** A new last layer, for twice the keys of the one before. */
  private addLayer(before: number): Layer {
    const layer = newLayer(before * 2)
    this.layers.push(layer)
    return layer
  }

  /** False when `key` was never added; true when it may have been. */
  mayHold(key: Uint8Array): boolean {
    return this.mayHoldAt(key, 0)
  }

  /** `mayHold` of the 32 bytes of `bytes` from `at`. */
  mayHoldAt(bytes: Uint8Array, at: number): boolean {
    const layers = this.layers
    for (let i = 0; i < layers.length; i++) if (inLayer(layers[i]!, bytes, at)) return true
    return false
  }
}

function newLayer(capacity: number): Layer {
  let bits = 32
  while (bits < capacity * BITS_PER_KEY) bits *= 2
  return { bits: new Uint32Array(bits / 32), mask: bits - 1, keys: 0, capacity }
}

/**
 * Whether all `PROBES` bits of `key` are set in `layer`. Without a branch per probe: while the filter is empty
 * the first probe always missed, so a loop's later rounds first ran once keys were added, and threw away the
 * compiled code of the trie sync's functions it was inlined into.
 */
function inLayer(layer: Layer, key: Uint8Array, at: number): boolean {
  const { bits, mask } = layer
  const a = word(key, at) & mask
  const b = word(key, at + 4) & mask
  const c = word(key, at + 8) & mask
  const d = word(key, at + 12) & mask
  return ((bits[a >>> 5]! >>> (a & 31)) & (bits[b >>> 5]! >>> (b & 31)) & (bits[c >>> 5]! >>> (c & 31)) & (bits[d >>> 5]! >>> (d & 31)) & 1) === 1
}

/** The 32-bit word of `key` from byte `at` (unsigned). */
function word(key: Uint8Array, at: number): number {
  return ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0
}
