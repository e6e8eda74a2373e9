import { createDsfgNode } from '../../node/create-node.js'
import { openStore } from '../../store/open-store.js'
import { defineCommand } from '../command.js'
import { DATA_DESCRIPTION } from '../flags.js'
import { writeJson } from '../io.js'
import { terminationSignal, untilAborted } from '../signals.js'

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve tries (and topics) to peers until SIGINT/SIGTERM; first stdout line {"peerId","addrs"}',
  description: [
    'Starts a libp2p node (TCP, noise, yamux, identify, gossipsub) that answers /dsfg/nodes/1.0.0 from --data.',
    'Prints one JSON line {"peerId","addrs":[…]} once listening, then runs until SIGINT or SIGTERM, when it',
    'closes the node and the store and exits 0.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    listen: {
      type: 'string',
      value: 'MADDR',
      multiple: true,
      description: 'listen address (repeatable); default /ip4/127.0.0.1/tcp/0'
    }
  },
  async run({ options }, io) {
    const stop = terminationSignal()
    const store = await openStore(options.data)
    try {
      const listen = options.listen.length > 0 ? options.listen : undefined
      const node = await createDsfgNode({ store, listen })
      try {
        await writeJson(io.stdout, {
          peerId: node.peerId.toString(),
          addrs: node.getMultiaddrs().map((a) => a.toString())
        })
        await untilAborted(stop.signal)
      } finally {
        await node.stop()
      }
    } finally {
      stop.dispose()
      await store.close()
    }
  }
})
