import { keccak256Into } from './keccak-wasm.js'

/**
 * keccak-256 of `data` (Ethereum's hash, not NIST SHA3-256). Hashing is the bottleneck of building and of
 * verifying tries and of checking downloaded topic items, so this uses the WebAssembly permutation of
 * keccak-wasm.ts (4-6× the unrolled JavaScript of keccak-unrolled.ts on raw hashing, 2.9-3.3× on hash +
 * decode of trie nodes; the JavaScript stays as its fallback where WebAssembly is unavailable). The tests
 * cross-check both against @noble/hashes on every input length up to several blocks. `npm run bench:hashing`
 * measures them again.
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
