/**
 * `dsfg import` as a user runs it: a generated account-like fixture (JSON lines, shuffled so the importer must
 * sort) imported into LevelDB by the built CLI in a child process. For 100k keys the printed root is checked
 * against @ethereumjs/mpt's root for the same pairs (mpt takes ~25 s here; skip with --skip-mpt).
 *
 *   npm run build && npm run bench:import            (100k and 1M keys)
 *   npm run bench:import -- 100000 --skip-mpt
 */
import { execFileSync } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMPT } from '@ethereumjs/mpt'
import { accountEntries } from '../src/fixtures/generate.js'
import { toHex } from '../src/util/hex.js'
import { Prng } from '../src/util/prng.js'

const args = process.argv.slice(2)
const skipMpt = args.includes('--skip-mpt')
const sizes = args.map(Number).filter((n) => n > 0)
const bin = join(import.meta.dirname, '..', 'dist', 'cli', 'bin.js')

async function writeFixture(path: string, entries: [Uint8Array, Uint8Array][]): Promise<void> {
  const prng = new Prng(2)
  const order = entries.map((_e, i) => i)
  for (let i = order.length - 1; i > 0; i--) {
    const j = prng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const out = createWriteStream(path)
  for (const i of order) {
    const [k, v] = entries[i]!
    if (!out.write(`{"key":"${toHex(k)}","value":"${toHex(v)}"}\n`)) await new Promise<void>((r) => out.once('drain', () => r()))
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
}

for (const keys of sizes.length > 0 ? sizes : [100_000, 1_000_000]) {
  const dir = await mkdtemp(join(tmpdir(), 'dsfg-bench-import-'))
  try {
    const entries = accountEntries(1, keys)
    const file = join(dir, 'fixture.jsonl')
    await writeFixture(file, entries)
    const t = performance.now()
    const out = execFileSync(process.execPath, [bin, 'import', '--data', join(dir, 'db'), file], { encoding: 'utf8' })
    const seconds = (performance.now() - t) / 1000
    const result = JSON.parse(out) as { root: string; keys: number; nodes: number }
    let mptRoot: string | undefined
    if (keys <= 100_000 && !skipMpt) {
      const trie = await createMPT()
      for (const [k, v] of entries) await trie.put(k, v)
      mptRoot = toHex(trie.root())
    }
    console.log(
      JSON.stringify({
        keys,
        nodes: result.nodes,
        seconds: Number(seconds.toFixed(2)),
        keysPerSecond: Math.round(keys / seconds),
        root: result.root,
        ...(mptRoot === undefined ? {} : { mptRoot, rootsMatch: mptRoot === result.root })
      })
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
