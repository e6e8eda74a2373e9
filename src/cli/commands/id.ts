import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { UsageError } from '../../errors.js'
import { MEMORY_STORE_SPEC } from '../../store/open-store.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { writeJson } from '../io.js'
import { loadNodeKey, NODE_KEY_FILE } from '../node-key.js'

export const idCommand = defineCommand({
  name: 'id',
  summary: SUMMARIES.id,
  description: [
    `Prints {"peerId":"12D3Koo…"}: the peer id of the private key in DIR/${NODE_KEY_FILE}, the one every node`,
    'started with --data DIR (serve, sync) runs as. Creates DIR and a new Ed25519 key (file mode 0600) when',
    'there is none. Does not open the store, so it also works while a serve holds DIR. The key itself is',
    'never printed; a file that is not a key is an error, never replaced.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: 'the directory of the store and its node key' }
  },
  async run({ options }, io) {
    if (options.data === MEMORY_STORE_SPEC) {
      throw new UsageError(`--data ${MEMORY_STORE_SPEC} keeps no key: each run has a new peer id (give a directory)`)
    }
    const key = await loadNodeKey(options.data)
    await writeJson(io.stdout, { peerId: peerIdFromPrivateKey(key).toString() })
  }
})
