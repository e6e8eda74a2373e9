import { InvalidInputError } from '../../errors.js'
import { verifyProof } from '../../proof/proof.js'
import { fromHex, toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { bytesFlag, hashFlag, SECURE_DESCRIPTION, trieKey } from '../flags.js'
import { inputName, readJsonFile, writeJson } from '../io.js'

/**
 * A proof file's content: a JSON array of hex node blobs, or what `dsfg get --proof` prints (an object whose
 * `proof` is that array). `name` names the file in errors.
 */
export function parseProofFile(json: unknown, name: string): Uint8Array[] {
  if (json !== null && typeof json === 'object' && !Array.isArray(json) && 'proof' in json) json = json.proof
  if (!Array.isArray(json)) {
    throw new InvalidInputError(`${name}: expected a JSON array of hex proof nodes (or dsfg get --proof's output)`)
  }
  return json.map((node: unknown, i) => fromHex(node as string, `${name}: proof node ${i}`))
}

export const verifyProofCommand = defineCommand({
  name: 'verify-proof',
  summary: SUMMARIES['verify-proof'],
  description: [
    'Checks that the nodes in --proof FILE (a JSON array of hex node blobs, or the whole output of `dsfg get --proof`)',
    'prove the value of --key under --root, or its absence. Prints {"valid":true,"value":"0x…"} or',
    '{"valid":true,"value":null} (the key is proven absent). A proof that proves neither is an error:',
    '"invalid proof: <reason>" on stderr, exit 1.'
  ].join('\n'),
  options: {
    root: { type: 'string', value: '0x…', required: true, description: 'trie root hash (32 bytes)' },
    key: { type: 'string', value: '0x…', required: true, description: 'key the proof is for (hex)' },
    proof: { type: 'string', value: 'FILE', required: true, description: 'JSON array of hex nodes, or - for stdin' },
    secure: { type: 'boolean', description: SECURE_DESCRIPTION }
  },
  async run({ options }, io) {
    const root = hashFlag(options.root, '--root')
    const key = trieKey(bytesFlag(options.key, '--key'), options.secure)
    const proof = parseProofFile(await readJsonFile(options.proof, { stdin: io.stdin }), inputName(options.proof))
    const value = verifyProof(root, key, proof)
    await writeJson(io.stdout, { valid: true, value: value === null ? null : toHex(value) })
  }
})
