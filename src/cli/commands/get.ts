import { createProof } from '../../proof/proof.js'
import { openStore } from '../../store/open-store.js'
import { trieGet } from '../../trie/walk.js'
import { toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { bytesFlag, DATA_DESCRIPTION, hashFlag, SECURE_DESCRIPTION, trieKey } from '../flags.js'
import { writeJson } from '../io.js'

export const getCommand = defineCommand({
  name: 'get',
  summary: SUMMARIES.get,
  description: [
    'Looks up --key in the trie at --root in --data, reading only the nodes on the key\'s path.',
    'Prints {"value":"0x…"} for a present key, {"value":null} for an absent one; with --proof also',
    '"proof": the hex node blobs from the root along the key\'s path (for absence: up to where it leaves the trie),',
    'the input `dsfg verify-proof` checks. Fails (exit 1) when a node on the path is not in the store.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    root: { type: 'string', value: '0x…', required: true, description: 'trie root hash (32 bytes)' },
    key: { type: 'string', value: '0x…', required: true, description: 'key to look up (hex)' },
    proof: { type: 'boolean', description: 'also print the Merkle proof of the answer' },
    secure: { type: 'boolean', description: SECURE_DESCRIPTION }
  },
  async run({ options }, io) {
    const root = hashFlag(options.root, '--root')
    const key = trieKey(bytesFlag(options.key, '--key'), options.secure)
    const store = await openStore(options.data, { mode: 'read' })
    try {
      const value = await trieGet(store, root, key)
      const result: { value: string | null; proof?: string[] } = { value: value === null ? null : toHex(value) }
      if (options.proof) result.proof = (await createProof(store, root, key)).map(toHex)
      await writeJson(io.stdout, result)
    } finally {
      await store.close()
    }
  }
})
