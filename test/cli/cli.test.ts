import { execFileSync } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { checkNodeVersion } from '../../src/cli/node-version.js'
import { LevelStore } from '../../src/store/level-store.js'
import { keccak256 } from '../../src/trie/keccak.js'
import { fromHex, toHex } from '../../src/util/hex.js'
import { type CliRun, expectOneLineError, REPO_ROOT, runCli, type RunOptions, useBuiltCli } from './cli-harness.js'

// Every test spawns the compiled CLI several times; on a loaded 2-vCPU machine one spawn can take a second.
vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-cli-')
let fileCount = 0

const run = (args: readonly string[], options?: RunOptions): Promise<CliRun> => runCli(cli.bin, args, options)

async function tempFile(content: string, ext = 'jsonl'): Promise<string> {
  const path = join(cli.work, `input-${++fileCount}.${ext}`)
  await writeFile(path, content)
  return path
}

function tempDir(): string {
  return join(cli.work, `data-${++fileCount}`)
}

function parseJson(result: CliRun): Record<string, unknown> {
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  const lines = result.stdout.split('\n').filter((line) => line !== '')
  expect(lines).toHaveLength(1)
  return JSON.parse(lines[0]!) as Record<string, unknown>
}

/** The ethereum/tests rule: strings starting with 0x are hex, everything else is UTF-8. */
function testString(text: string): string {
  return text.startsWith('0x') ? text : toHex(new TextEncoder().encode(text))
}

function jsonLines(pairs: Iterable<[string, string]>): string {
  return Array.from(pairs, ([key, value]) => `${JSON.stringify({ key, value })}\n`).join('')
}

interface AnyOrderCase {
  in: Record<string, string>
  root: string
}

async function readVectors(name: string): Promise<Record<string, AnyOrderCase>> {
  const text = await readFile(join(REPO_ROOT, 'fixtures', 'vectors', 'trietests', name), 'utf8')
  return JSON.parse(text) as Record<string, AnyOrderCase>
}

const COMMAND_NAMES = ['import', 'get', 'verify-proof', 'id', 'publish', 'serve', 'sync', 'items', 'demo']

describe('dsfg --help', () => {
  it('lists every command with a description, and the exit codes', async () => {
    for (const args of [['--help'], ['-h'], [], ['help']]) {
      const result = await run(args)
      expect(result.code).toBe(0)
      expect(result.stderr).toBe('')
      for (const name of COMMAND_NAMES) expect(result.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'))
      expect(result.stdout).toMatch(/Exit codes:/)
    }
  })

  it('describes each command from its option table', async () => {
    const result = await run(['import', '--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Usage: dsfg import --data DIR [--secure] FILE')
    const get = await run(['get', '-h'])
    expect(get.stdout).toContain('Usage: dsfg get --data DIR --root 0x… --key 0x… [--proof] [--secure]')
    const verify = await run(['verify-proof', '--help'])
    expect(verify.stdout).toContain('Usage: dsfg verify-proof --root 0x… --key 0x… --proof FILE [--secure]')
    const sync = await run(['sync', '--help'])
    expect(sync.code).toBe(0)
    expect(sync.stdout).toContain('Usage: dsfg sync --data DIR --peer MADDR… [--root 0x…] [--topic T]')
    const items = await run(['items', '--help'])
    expect(items.code).toBe(0)
    expect(items.stdout).toContain('dsfg items --data DIR --topic T')
  })

  it('keeps the shebang in the compiled executable', async () => {
    expect((await readFile(cli.bin, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node')
  })
})

describe('standard output closed early', () => {
  it('ends without a word, exit 141, as `dsfg items … | head` closes it', async () => {
    const lines = Array.from({ length: 20_000 }, (_v, i) => JSON.stringify({ data: toHex(Uint8Array.of(i >> 8, i & 0xff)) }))
    const data = tempDir()
    expect((await run(['publish', '--data', data, '--topic', 't', await tempFile(lines.join('\n'))])).code).toBe(0)
    // 20,000 lines are some 500 KB, more than a pipe holds: the reader leaves after its first chunk.
    const result = await run(['items', '--data', data, '--topic', 't'], {
      onSpawn: (child) => child.stdout?.once('data', () => child.stdout?.destroy())
    })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(141)
  })
})

describe('usage errors (exit 2)', () => {
  it('unknown command', async () => {
    expectOneLineError(await run(['frobnicate']), 2, /unknown command "frobnicate"/)
  })

  it('unknown option', async () => {
    expectOneLineError(await run(['import', '--data', ':memory:', '--bogus', 'x']), 2, /unknown option --bogus/)
  })

  it('missing required option, missing value, missing argument', async () => {
    expectOneLineError(await run(['import', 'x.jsonl']), 2, /missing required option --data DIR/)
    expectOneLineError(await run(['import', 'x.jsonl', '--data']), 2, /--data DIR needs a value/)
    expectOneLineError(await run(['import', '--data', ':memory:']), 2, /missing argument FILE/)
  })

  it('a malformed flag value', async () => {
    const args = ['get', '--data', ':memory:', '--key', '0x01']
    expectOneLineError(await run([...args, '--root', '0x1234']), 2, /--root must be 32 bytes/)
    expectOneLineError(await run([...args, '--root', `0x${'0'.repeat(63)}`]), 2, /--root has an odd number/)
    const root = ['get', '--data', ':memory:', '--root', toHex(new Uint8Array(32))]
    expectOneLineError(await run([...root, '--key', '0xzz']), 2, /--key is not valid hex/)
  })

})

describe('bad input (exit 1)', () => {
  const importFile = (path: string): Promise<CliRun> => run(['import', '--data', ':memory:', path])

  it('a missing file', async () => {
    const path = join(cli.work, 'no-such-file.jsonl')
    expectOneLineError(await importFile(path), 1, new RegExp(`${path}: no such file or directory`))
  })

  it('a directory instead of a file', async () => {
    expectOneLineError(await importFile(cli.work), 1, /is a directory/)
  })

  it('a malformed JSON line, by line number', async () => {
    const path = await tempFile('{"key":"0x01","value":"0x02"}\n{"key":"0x02",\n')
    expectOneLineError(await importFile(path), 1, /line 2: malformed JSON/)
  })

  it('odd-length hex, non-hex, missing or unknown fields, empty value, not an object', async () => {
    const good = '{"key":"0x01","value":"0x02"}\n'
    const cases: [string, RegExp][] = [
      ['{"key":"0x123","value":"0x02"}', /line 2: key has an odd number of hex digits/],
      ['{"key":"0x12","value":"0xabc"}', /line 2: value has an odd number of hex digits/],
      ['{"key":"0xzz","value":"0x02"}', /line 2: key is not valid hex/],
      ['{"key":7,"value":"0x02"}', /line 2: key must be a hex string/],
      ['{"value":"0x02"}', /line 2: missing "key"/],
      ['{"key":"0x01"}', /line 2: missing "value"/],
      ['{"key":"0x01","value":"0x02","extra":1}', /line 2: unknown field "extra"/],
      ['{"key":"0x01","value":"0x"}', /line 2: value is empty/],
      [`{"key":"0x01","value":"0x${'ab'.repeat(1024 * 1024 - 8)}"}`, /line 2: value of 1048568 bytes is too large: its trie node would be over/],
      ['["0x01","0x02"]', /line 2: expected an object/]
    ]
    const results = await Promise.all(cases.map(async ([line]) => importFile(await tempFile(`${good}${line}\n`))))
    results.forEach((result, i) => {
      expectOneLineError(result, 1, cases[i]![1])
    })
  })

  it('a store directory another process holds', async () => {
    const dir = tempDir()
    const holder = await LevelStore.open(dir)
    try {
      const path = await tempFile('{"key":"0x01","value":"0x02"}\n')
      expectOneLineError(await run(['import', '--data', dir, path]), 1, /cannot open store at .*lock/)
    } finally {
      await holder.close()
    }
  })

  it('a root whose nodes are not in the store', async () => {
    const result = await run(['get', '--data', ':memory:', '--root', toHex(keccak256(Uint8Array.of(1))), '--key', '0x01'])
    expectOneLineError(result, 1, /missing/)
  })
})

describe('dsfg import', () => {
  it('builds the roots of the ethereum/tests any-order vectors (:memory:)', async () => {
    const vectors = Object.entries(await readVectors('trieanyorder.json'))
    await Promise.all(
      vectors.map(async ([name, vector]) => {
        const pairs = Object.entries(vector.in).map(([k, v]): [string, string] => [testString(k), testString(v)])
        const output = parseJson(await run(['import', '--data', ':memory:', await tempFile(jsonLines(pairs))]))
        expect(output, name).toEqual({ root: vector.root, keys: pairs.length, nodes: expect.any(Number) })
      })
    )
  })

  it('hashes keys with --secure', async () => {
    for (const file of ['trieanyorder_secureTrie.json', 'hex_encoded_securetrie_test.json']) {
      const vectors = Object.entries(await readVectors(file))
      await Promise.all(
        vectors.map(async ([name, vector]) => {
          const pairs = Object.entries(vector.in).map(([k, v]): [string, string] => [testString(k), testString(v)])
          const path = await tempFile(jsonLines(pairs))
          const output = parseJson(await run(['import', '--data', ':memory:', '--secure', path]))
          expect(output['root'], `${file} ${name}`).toBe(vector.root)
        })
      )
    }
  })

  it('imports the committed accounts fixture into LevelDB, matching its recorded root', async () => {
    const meta = JSON.parse(await readFile(join(REPO_ROOT, 'fixtures', 'accounts-1k.json'), 'utf8')) as {
      root: string
      keys: number
      nodes: number
    }
    const output = parseJson(await run(['import', '--data', tempDir(), join(REPO_ROOT, 'fixtures', 'accounts-1k.jsonl')]))
    expect(output).toEqual({ root: meta.root, keys: meta.keys, nodes: meta.nodes })
  })

  it('reads stdin with -, keeps the last value of a repeated key, and takes input in any order', async () => {
    const input = jsonLines([
      ['0x646f67', '0x01'],
      ['0x646f65', testString('reindeer')],
      ['0x646f67', testString('puppy')],
      ['0x646f67676c6573776f727468', testString('cat')]
    ])
    const output = parseJson(await run(['import', '--data', ':memory:', '-'], { input }))
    // The "dogs" vector of trieanyorder.json: doe, dog, dogglesworth.
    expect(output['root']).toBe('0x8aad789dff2f538bca5d8ea56e8abe10f4c7ba3a5dea95fea4cd6e7c3a1168d3')
    expect(output['keys']).toBe(3)
  })

  it('gives the empty root for empty input', async () => {
    const output = parseJson(await run(['import', '--data', ':memory:', await tempFile('\n')]))
    expect(output).toEqual({ root: toHex(keccak256(Uint8Array.of(0x80))), keys: 0, nodes: 0 })
  })

  it('stopped by SIGINT while it works: exit 130 and one line, not a silent exit', async () => {
    const lines = Array.from({ length: 200_000 }, (_, i) => `{"key":"0x${i.toString(16).padStart(8, '0')}","value":"0x01"}`)
    const path = await tempFile(`${lines.join('\n')}\n`)
    const result = await run(['import', '--data', tempDir(), path], {
      // The first progress line says it is at work: stop it there.
      env: { DSFG_PROGRESS_INTERVAL_MS: '50' },
      onSpawn: (child) => child.stderr!.once('data', () => child.kill('SIGINT'))
    })
    const messages = result.stderr.split('\n').filter((line) => line.startsWith('dsfg: '))
    expect(messages, result.stderr).toEqual(['dsfg: interrupted by SIGINT'])
    expect(result.code).toBe(130)
    expect(result.stdout).toBe('')
  })
})

describe('dsfg get and verify-proof', () => {
  const entries: [string, string][] = Array.from({ length: 300 }, (_, i) => [
    toHex(keccak256(Uint8Array.of(i >> 8, i & 0xff)).subarray(0, 20)),
    toHex(new TextEncoder().encode(`value ${i}`))
  ])
  let data: string
  let root: string
  let secureData: string
  let secureRoot: string

  beforeAll(async () => {
    const path = await tempFile(jsonLines(entries))
    data = tempDir()
    root = parseJson(await run(['import', '--data', data, path]))['root'] as string
    secureData = tempDir()
    secureRoot = parseJson(await run(['import', '--data', secureData, '--secure', path]))['root'] as string
  }, 60_000)

  async function getWithProof(key: string, extra: string[] = [], store = data, at = root) {
    const output = parseJson(await run(['get', '--data', store, '--root', at, '--key', key, '--proof', ...extra]))
    const proof = output['proof'] as string[]
    expect(Array.isArray(proof)).toBe(true)
    return { value: output['value'] as string | null, proof, file: await tempFile(JSON.stringify(proof), 'json') }
  }

  it('get prints the value, and the proof only with --proof', async () => {
    const [key, value] = entries[17]!
    expect(parseJson(await run(['get', '--data', data, '--root', root, '--key', key]))).toEqual({ value })
    const absent = toHex(new Uint8Array(20).fill(0xee))
    expect(parseJson(await run(['get', '--data', data, '--root', root, '--key', absent]))).toEqual({ value: null })
  })

  it('round-trips a present key: get --proof, then verify-proof', async () => {
    for (const [key, value] of [entries[0]!, entries[123]!, entries[299]!]) {
      const got = await getWithProof(key)
      expect(got.value).toBe(value)
      expect(got.proof.length).toBeGreaterThan(0)
      const verified = parseJson(await run(['verify-proof', '--root', root, '--key', key, '--proof', got.file]))
      expect(verified).toEqual({ valid: true, value })
    }
  })

  it('round-trips an absent key: the proof shows absence', async () => {
    for (const key of [toHex(new Uint8Array(20)), toHex(new Uint8Array(20).fill(0xff)), '0x01']) {
      const got = await getWithProof(key)
      expect(got.value).toBeNull()
      const verified = parseJson(await run(['verify-proof', '--root', root, '--key', key, '--proof', got.file]))
      expect(verified).toEqual({ valid: true, value: null })
    }
  })

  it('round-trips with --secure on both sides', async () => {
    const [key, value] = entries[42]!
    const got = await getWithProof(key, ['--secure'], secureData, secureRoot)
    expect(got.value).toBe(value)
    const args = ['verify-proof', '--root', secureRoot, '--key', key, '--proof', got.file]
    expect(parseJson(await run([...args, '--secure']))).toEqual({ valid: true, value })
    // Without --secure the same proof is about another key, which it does not prove.
    expect((await run(args)).code).toBe(1)
  })

  it('takes the whole output of get --proof as its --proof (dsfg get … --proof | dsfg verify-proof … --proof -)', async () => {
    const [key, value] = entries[9]!
    const got = await run(['get', '--data', data, '--root', root, '--key', key, '--proof'])
    const result = await run(['verify-proof', '--root', root, '--key', key, '--proof', '-'], { input: got.stdout })
    expect(parseJson(result)).toEqual({ valid: true, value })
  })

  it('reads the proof from stdin with --proof -', async () => {
    const [key, value] = entries[5]!
    const got = await getWithProof(key)
    const result = await run(['verify-proof', '--root', root, '--key', key, '--proof', '-'], {
      input: JSON.stringify(got.proof)
    })
    expect(parseJson(result)).toEqual({ valid: true, value })
  })

  it('rejects a tampered proof: one flipped byte in any node', async () => {
    const [key] = entries[200]!
    const { proof } = await getWithProof(key)
    const results = await Promise.all(
      proof.map(async (_, node) => {
        const bytes = fromHex(proof[node]!)
        bytes[bytes.length >> 1]! ^= 0x01
        const tampered = proof.map((hex, i) => (i === node ? toHex(bytes) : hex))
        const file = await tempFile(JSON.stringify(tampered), 'json')
        return run(['verify-proof', '--root', root, '--key', key, '--proof', file])
      })
    )
    expect(results.length).toBeGreaterThan(1)
    for (const result of results) expectOneLineError(result, 1, /^dsfg: invalid proof: /)
  })

  it('rejects a proof for another root, and an empty proof of a present key', async () => {
    const [key] = entries[9]!
    const { file } = await getWithProof(key)
    const otherRoot = toHex(keccak256(Uint8Array.of(7)))
    expectOneLineError(await run(['verify-proof', '--root', otherRoot, '--key', key, '--proof', file]), 1, /invalid proof/)
    const empty = await tempFile('[]', 'json')
    expectOneLineError(await run(['verify-proof', '--root', root, '--key', key, '--proof', empty]), 1, /invalid proof/)
  })

  it('rejects a missing or malformed proof file', async () => {
    const args = ['verify-proof', '--root', root, '--key', '0x01', '--proof']
    const missing = join(cli.work, 'no-proof.json')
    expectOneLineError(await run([...args, missing]), 1, /no-proof\.json: no such file or directory/)
    expectOneLineError(await run([...args, await tempFile('["0x01",', 'json')]), 1, /malformed JSON/)
    expectOneLineError(await run([...args, await tempFile('{"a":1}', 'json')]), 1, /expected a JSON array/)
    expectOneLineError(await run([...args, await tempFile('["0xf8","0x1"]', 'json')]), 1, /proof node 1 has an odd/)
  })

  it('get fails with one line when the store lacks the root', async () => {
    const other = toHex(keccak256(Uint8Array.of(9)))
    expectOneLineError(await run(['get', '--data', data, '--root', other, '--key', '0x01']), 1, /missing/)
  })
})

/** Every `node` on PATH (and the usual system one) older than Node 22. */
function oldNodes(): string[] {
  const candidates = new Set<string>(['/usr/bin/node', '/usr/local/bin/node'])
  try {
    for (const line of execFileSync('which', ['-a', 'node'], { encoding: 'utf8' }).split('\n')) {
      if (line.trim() !== '') candidates.add(line.trim())
    }
  } catch {
    // `which` missing or nothing found: the fixed candidates remain.
  }
  const old: string[] = []
  for (const path of candidates) {
    try {
      const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim()
      const real = realpathSync(path)
      if (Number(/^v(\d+)/.exec(version)?.[1]) < 22 && !old.includes(real)) old.push(real)
    } catch {
      // Not there or not runnable.
    }
  }
  return old
}

describe('Node version gate', () => {
  // The pure check is unit-tested in node-version.test.ts; this runs the real executable on every old Node
  // found here (this machine kind has Node 20 at /usr/bin/node).
  const nodes = oldNodes()

  if (nodes.length === 0) {
    it('no Node older than 22 on this machine: the pure check stands in', () => {
      expect(checkNodeVersion('20.0.0')).toMatch(/needs Node\.js 22 or newer/)
    })
  }

  it.each(nodes)('%s: one line naming Node 22, exit 2, for any command', async (node) => {
    for (const args of [['--help'], ['import', '--data', ':memory:', 'x.jsonl'], ['demo']]) {
      const result = await run(args, { node })
      expectOneLineError(result, 2, /needs Node\.js 22 or newer.*install Node\.js 22/)
    }
  })
})
