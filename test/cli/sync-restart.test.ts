import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { accountEntries } from '../../src/fixtures/generate.js'
import { LevelStore } from '../../src/store/level-store.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { importSorted } from '../../src/trie/stack-trie.js'
import { checkStoredSubtries, checkTrieComplete } from '../../src/trie/walk.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { type AdversaryNode, createNodesAdversary } from '../helpers/adversary.js'
import { type BuiltCli, buildCli, REPO_ROOT, runCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

let cli: BuiltCli
let work: string
let server: AdversaryNode | undefined

beforeAll(async () => {
  cli = await buildCli()
  work = await mkdtemp(join(tmpdir(), 'dsfg-restart-'))
}, 180_000)

afterAll(async () => {
  await server?.stop()
  await cli?.remove()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('dsfg sync killed mid-sync', () => {
  it('restarts on the same LevelDB, keeps only complete subtries, and never fetches a committed node again', async () => {
    const source = new MemoryStore()
    const { root } = await importSorted(source, accountEntries(3, 20_000))
    let round = 1
    const requested: Record<number, string[]> = { 1: [], 2: [] }
    server = await createNodesAdversary(async (hashes) => {
      requested[round]!.push(...hashes.map(toHex))
      // Slow enough that the kill lands mid-sync.
      if (round === 1) await new Promise((r) => setTimeout(r, 25))
      const blobs = await source.getMany(hashes)
      return { nodes: blobs.filter((b): b is Uint8Array => b !== undefined) }
    })
    const peer = server.node.getMultiaddrs()[0]!.toString()
    const data = join(work, 'client')
    const args = [cli.bin, 'sync', '--data', data, '--peer', peer, '--root', toHex(root)]

    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    while (requested[1]!.length < 3000) await new Promise((r) => setTimeout(r, 20))
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')

    // What the killed process left behind: only complete subtries.
    const store = await LevelStore.open(data)
    const committed = new Set<string>()
    for (const hex of new Set(requested[1])) if ((await store.get(fromHex(hex))) !== undefined) committed.add(hex)
    const check = await checkStoredSubtries(store, [...committed].map((h) => fromHex(h)))
    expect(check.incomplete).toEqual([])
    expect(check.missing).toEqual([])
    expect(committed.size).toBeGreaterThan(0)
    await store.close()

    round = 2
    const resumed = await runCli(cli.bin, args.slice(1), { timeoutMs: 60_000 })
    expect(resumed.code).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ root: toHex(root), verified: true })
    expect(requested[2]!.filter((h) => committed.has(h))).toEqual([])

    const after = await LevelStore.open(data)
    expect((await checkTrieComplete(after, root)).complete).toBe(true)
    await after.close()
  })
})
