import { keccak256Into } from './keccak-unrolled.js'

/**
 * keccak-256 of `data` (Ethereum's hash, not NIST SHA3-256). Hashing is the bottleneck of building and of
 * verifying tries, so this uses the unrolled permutation in keccak-unrolled.ts (2-2.8× @noble/hashes here);
 * the tests cross-check it against @noble/hashes on every input length up to several blocks. WebAssembly
 * keccaks (hash-wasm, @polkadot/wasm-crypto) hash 2.5-3.5× faster still, but a verifying node also decodes
 * every node, and hash + decode gains only about 1.3× (decoding alone caps it near 1.7×): below the 1.5× that
 * would pay for a dependency and an async start-up. `npm run bench:hashing` measures it again.
 */
export function keccak256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32)
  keccak256Into(data, out, 0)
  return out
}

/** keccak256(rlp("")): the root of the empty trie. */
export const EMPTY_ROOT: Uint8Array = Uint8Array.from([
  0x56, 0xe8, 0x1f, 0x17, 0x1b, 0xcc, 0x55, 0xa6, 0xff, 0x83, 0x45, 0xe6, 0x92, 0xc0, 0xf8, 0x6e, 0x5b, 0x48, 0xe0,
  0x1b, 0x99, 0x6c, 0xad, 0xc0, 0x01, 0x62, 0x2f, 0xb5, 0xe3, 0x63, 0xb4, 0x21
])
