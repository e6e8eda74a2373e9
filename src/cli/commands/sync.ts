import { multiaddr } from '@multiformats/multiaddr'
import { DsfgError, UsageError } from '../../errors.js'
import { createDsfgNode } from '../../node/create-node.js'
import { openStore } from '../../store/open-store.js'
import { checkTrieComplete } from '../../trie/walk.js'
import { toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { DATA_DESCRIPTION, hashFlag } from '../flags.js'
import { writeJson } from '../io.js'
import { ProgressReporter } from '../progress.js'
import { terminationSignal } from '../signals.js'

/** How long `sync` waits for at least one dialled peer to turn out to serve trie nodes. */
const PEER_WAIT_MS = 15_000

/** The sync could not be completed and verified. */
export class SyncFailedError extends DsfgError {
  static override readonly code: string = 'ERR_SYNC_FAILED'
}

export const syncCommand = defineCommand({
  name: 'sync',
  summary: 'sync a trie root (--root) from peers into --data, verifying every node; summary JSON',
  description: [
    'Dials every --peer (a multiaddr ending in /p2p/<peer id>), then downloads the trie at --root from the',
    'peers that serve /dsfg/nodes/1.0.0, checking every node against its hash. Progress goes to stderr: a bar on',
    'a terminal, JSON lines otherwise. When done, walks the whole trie in the store once more and prints',
    '{"root","nodes","fetched","bytes","seconds","verifySeconds","rate","peers","peakRssMB","verified":true}',
    '(seconds: the sync; verifySeconds: the final walk); exits 0 only when verified.',
    'Stored nodes are complete subtries, so an interrupted sync resumes where it stopped. (--topic comes with',
    'topic sync.)'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    peer: { type: 'string', value: 'MADDR', multiple: true, required: true, description: 'peer to sync from (repeatable)' },
    root: { type: 'string', value: '0x…', required: true, description: 'trie root hash to sync (32 bytes)' }
  },
  async run({ options }, io) {
    const root = hashFlag(options.root, '--root')
    const peers = options.peer.map((p) => {
      try {
        return multiaddr(p)
      } catch (err) {
        throw new UsageError(`--peer ${JSON.stringify(p)} is not a multiaddr`, { cause: err })
      }
    })
    const stop = terminationSignal()
    const store = await openStore(options.data)
    try {
      const node = await createDsfgNode({ store })
      try {
        const dialled = await Promise.allSettled(peers.map((p) => node.dial(p, { signal: stop.signal })))
        dialled.forEach((r, i) => {
          if (r.status === 'rejected') io.stderr.write(`dsfg: could not dial ${peers[i]!.toString()}: ${String(r.reason)}\n`)
        })
        if (dialled.every((r) => r.status === 'rejected')) throw new SyncFailedError('could not reach any peer')

        const progress = new ProgressReporter(io.stderr)
        const started = Date.now()
        const noPeers = new AbortController()
        const handle = node.services.dsfg.startStateSync(root, { signal: AbortSignal.any([stop.signal, noPeers.signal]) })
        handle.syncer.addEventListener('progress', (e) => progress.update(e.detail))
        const watchdog = setTimeout(() => {
          if (node.services.dsfg.nodePeers().length === 0) noPeers.abort()
        }, PEER_WAIT_MS)
        let result: Awaited<typeof handle.done>
        try {
          result = await handle.done
        } catch (err) {
          if (noPeers.signal.aborted) throw new SyncFailedError('no dialled peer serves /dsfg/nodes/1.0.0', { cause: err })
          throw err
        } finally {
          clearTimeout(watchdog)
          progress.finish()
        }
        const syncSeconds = (Date.now() - started) / 1000
        const verifyStarted = Date.now()
        const check = await checkTrieComplete(store, root)
        if (!check.complete) throw new SyncFailedError(`sync ended but ${check.missing.length} nodes are missing`)
        const verifySeconds = (Date.now() - verifyStarted) / 1000
        await writeJson(io.stdout, {
          root: toHex(root),
          nodes: check.nodes,
          fetched: result.nodes,
          bytes: result.bytes,
          seconds: Number(syncSeconds.toFixed(3)),
          verifySeconds: Number(verifySeconds.toFixed(3)),
          rate: Math.round(result.nodes / Math.max(syncSeconds, 0.001)),
          peers: node.services.dsfg.nodePeers().length,
          peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
          verified: true
        })
      } finally {
        await node.stop()
      }
    } finally {
      stop.dispose()
      await store.close()
    }
  }
})
