import { readdirSync, readFileSync } from 'node:fs'
import { RLP } from '@ethereumjs/rlp'
import { keccak256 } from '../../src/index.js'
import { fromHex } from '../../src/util/hex.js'

/**
 * The real eth_getProof responses in fixtures/vectors/proofs (provenance in fixtures/vectors/SOURCES.md,
 * section 2), turned into (root, key, proof, expected value) cases.
 */

export interface ProofCase {
  name: string
  root: Uint8Array
  key: Uint8Array
  proof: Uint8Array[]
  /** The proven value, `null` for a proof of absence. */
  value: Uint8Array | null
}

interface RpcProof {
  stateRoot: string
  address: string
  accountProof: string[]
  balance: string
  nonce: string
  codeHash: string
  storageHash: string
  storageProof: { key: string; value: string; proof: string[] }[]
}

const DIR = new URL('../../fixtures/vectors/proofs/', import.meta.url)

/** A JSON-RPC quantity as the minimal big-endian bytes RLP wants (zero is the empty string). */
export function quantityBytes(hex: string): Uint8Array {
  let body = hex.replace(/^0x/, '').replace(/^0+/, '')
  if (body.length % 2 === 1) body = '0' + body
  return fromHex(body)
}

/** `dir` defaults to the repository's fixtures next to this file (a compiled copy passes its own). */
export function loadVectorCases(dir: URL = DIR): { file: string; account: ProofCase; storage: ProofCase[] }[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
  return files.map((file) => {
    const json = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as RpcProof
    const accountExists = !file.includes('nonexistent')
    const account: ProofCase = {
      name: `${file} account`,
      root: fromHex(json.stateRoot),
      key: keccak256(fromHex(json.address)),
      proof: json.accountProof.map((p) => fromHex(p)),
      value: accountExists
        ? RLP.encode([
            quantityBytes(json.nonce),
            quantityBytes(json.balance),
            fromHex(json.storageHash),
            fromHex(json.codeHash)
          ])
        : null
    }
    const storage = json.storageProof.map((s, i): ProofCase => {
      const slot = quantityBytes(s.key)
      const slot32 = new Uint8Array(32)
      slot32.set(slot, 32 - slot.length)
      const quantity = quantityBytes(s.value)
      return {
        name: `${file} storage ${i}`,
        root: fromHex(json.storageHash),
        key: keccak256(slot32),
        proof: s.proof.map((p) => fromHex(p)),
        value: quantity.length === 0 ? null : RLP.encode(quantity)
      }
    })
    return { file, account, storage }
  })
}
