import { keccak256 } from '../trie/keccak.js'
import { toHex } from '../util/hex.js'

/**
 * The nodes of a proof, looked up by hash. A proof is a bag of node blobs: what makes a blob part of the
 * proven path is that its keccak-256 is the hash its parent (or the root) refers to, not its position.
 *
 * Blobs are hashed lazily, in list order, only until the wanted hash turns up. A proof in the usual
 * root-to-leaf order therefore costs one hash per node it uses, and junk appended by a peer is never hashed;
 * a shuffled proof still verifies, it just gets indexed further before the walk finds its nodes.
 */
export class ProofNodes {
  private readonly blobs: readonly Uint8Array[]
  private readonly byHash = new Map<string, Uint8Array>()
  private scanned = 0

  constructor(blobs: readonly Uint8Array[]) {
    this.blobs = blobs
  }

  /** The blob whose keccak-256 is `hash`, or `undefined` when the proof has none. */
  get(hash: Uint8Array): Uint8Array | undefined {
    const wanted = toHex(hash)
    const known = this.byHash.get(wanted)
    if (known !== undefined) return known
    while (this.scanned < this.blobs.length) {
      const blob = this.blobs[this.scanned++]!
      const key = toHex(keccak256(blob))
      if (!this.byHash.has(key)) this.byHash.set(key, blob)
      if (key === wanted) return blob
    }
    return undefined
  }
}
