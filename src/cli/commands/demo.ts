import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DsfgError, UsageError } from '../../errors.js'
import { accountEntries } from '../../fixtures/generate.js'
import { createDsfgNode } from '../../node/create-node.js'
import { createProof, verifyProof } from '../../proof/proof.js'
import { LevelStore } from '../../store/level-store.js'
import { keccak256 } from '../../trie/keccak.js'
import { importSorted } from '../../trie/stack-trie.js'
import { checkTrieComplete } from '../../trie/walk.js'
import { equalBytes } from '../../util/bytes.js'
import { toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { writeJson } from '../io.js'
import { ProgressReporter } from '../progress.js'
import { terminationSignal } from '../signals.js'

const DEFAULT_DEMO_KEYS = 50_000

/** A step of the demo did not give the expected, verified result. */
export class DemoFailedError extends DsfgError {
  static override readonly code: string = 'ERR_DEMO_FAILED'
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'build a fixture trie in LevelDB, sync it between two libp2p nodes on loopback, prove and verify keys',
  description: [
    'The end-to-end tour of what DSFG does today, on 127.0.0.1 only:',
    '  1. generates --keys account-like entries and builds their trie into a LevelDB store (the source);',
    '  2. starts a serving node on the source and an empty node, and syncs the root over libp2p',
    '     (TCP, noise, yamux), verifying every node, then walks the synced trie to check it is complete;',
    '  3. proves a present and an absent key from the synced store and verifies both proofs.',
    'Progress goes to stderr; the verified summary is one JSON object on stdout. The stores live in a',
    'temporary directory that is removed at the end unless --data names one.'
  ].join('\n'),
  options: {
    keys: { type: 'string', value: 'N', description: `number of keys (default ${DEFAULT_DEMO_KEYS})` },
    data: { type: 'string', value: 'DIR', description: 'keep the stores in DIR/source and DIR/synced' }
  },
  async run({ options }, io) {
    const keys = options.keys === undefined ? DEFAULT_DEMO_KEYS : Number(options.keys)
    if (!Number.isSafeInteger(keys) || keys < 1 || keys > 10_000_000) {
      throw new UsageError('--keys must be a whole number from 1 to 10000000')
    }
    const log = (line: string): void => {
      io.stderr.write(`${line}\n`)
    }
    const stop = terminationSignal()
    const dir = options.data ?? (await mkdtemp(join(tmpdir(), 'dsfg-demo-')))
    const source = await LevelStore.open(join(dir, 'source'))
    const synced = await LevelStore.open(join(dir, 'synced'))
    try {
      log(`dsfg demo: ${keys} account-like keys, stores in ${dir}`)
      let t = performance.now()
      const entries = accountEntries(1, keys)
      const built = await importSorted(source, entries, { signal: stop.signal })
      const importSeconds = (performance.now() - t) / 1000
      log(`1. built the source trie: root ${toHex(built.root)}, ${built.nodes} nodes, ${importSeconds.toFixed(2)} s`)

      const server = await createDsfgNode({ store: source })
      const client = await createDsfgNode({ store: synced })
      let sync: Awaited<ReturnType<typeof client.services.dsfg.syncRoot>>
      t = performance.now()
      try {
        log(`2. serving from ${server.getMultiaddrs()[0]!.toString()}; syncing into an empty store`)
        await client.dial(server.getMultiaddrs()[0]!, { signal: stop.signal })
        const progress = new ProgressReporter(io.stderr)
        const handle = client.services.dsfg.startStateSync(built.root, { signal: stop.signal })
        handle.syncer.addEventListener('progress', (e) => progress.update(e.detail))
        try {
          sync = await handle.done
        } finally {
          progress.finish()
        }
      } finally {
        await Promise.all([client.stop(), server.stop()])
      }
      const syncSeconds = (performance.now() - t) / 1000
      const check = await checkTrieComplete(synced, built.root)
      if (!check.complete || check.nodes !== built.nodes) {
        throw new DemoFailedError(`synced trie is incomplete: ${check.nodes} of ${built.nodes} nodes`)
      }
      log(
        `   synced and verified ${sync.nodes} nodes (${(sync.bytes / 1e6).toFixed(1)} MB) in ${syncSeconds.toFixed(2)} s, ` +
          `${Math.round(sync.nodes / syncSeconds)} nodes/s`
      )

      const [presentKey, presentValue] = entries[Math.floor(entries.length / 2)]!
      const absentKey = keccak256(new TextEncoder().encode('a key nobody inserted'))
      const presentProof = await createProof(synced, built.root, presentKey)
      const absentProof = await createProof(synced, built.root, absentKey)
      const provedValue = verifyProof(built.root, presentKey, presentProof)
      const provedAbsent = verifyProof(built.root, absentKey, absentProof)
      if (provedValue === null || !equalBytes(provedValue, presentValue)) {
        throw new DemoFailedError('the proof of a present key did not verify to its value')
      }
      if (provedAbsent !== null) throw new DemoFailedError('the proof of an absent key did not verify as absent')
      log(`3. proved ${toHex(presentKey)} present (${presentProof.length} nodes) and ${toHex(absentKey)} absent`)

      await writeJson(io.stdout, {
        keys,
        root: toHex(built.root),
        nodes: built.nodes,
        importSeconds: round(importSeconds),
        syncSeconds: round(syncSeconds),
        syncedNodesPerSecond: Math.round(sync.nodes / syncSeconds),
        syncedMB: round(sync.bytes / 1e6),
        proofs: { present: { nodes: presentProof.length, valid: true }, absent: { nodes: absentProof.length, valid: true } },
        verified: true
      })
    } finally {
      stop.dispose()
      await Promise.all([source.close(), synced.close()])
      if (options.data === undefined) await rm(dir, { recursive: true, force: true })
    }
  }
})

function round(n: number): number {
  return Math.round(n * 1000) / 1000
}
