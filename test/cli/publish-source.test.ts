import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { itemSource, MAX_ITEM_LINE_BYTES } from '../../src/cli/publish-source.js'
import { InvalidInputError } from '../../src/errors.js'
import { toHex } from '../../src/util/hex.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dsfg-publish-source-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function collect(source: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = []
  for await (const item of source) out.push(toHex(item))
  return out
}

const lines = ['{"data":"0x01"}', '', '{"data":"0xabcd"}\r', '{ "data" : "0x0203" }'].join('\n')
const expected = ['0x01', '0xabcd', '0x0203']

describe('itemSource', () => {
  it('reads a file anew on each read', async () => {
    const path = join(dir, 'items.jsonl')
    await writeFile(path, lines)
    const source = itemSource(path)
    expect(await collect(source.read())).toEqual(expected)
    expect(await collect(source.read())).toEqual(expected)
    await source.close()
  })

  it('copies standard input on its first read, reads the copy after, and removes it on close', async () => {
    const spools = join(dir, 'tmp')
    await mkdir(spools)
    const source = itemSource('-', { stdin: Readable.from([lines.slice(0, 7), lines.slice(7)]), tempDir: spools })
    expect(await collect(source.read())).toEqual(expected)
    expect(await readdir(spools)).toHaveLength(1)
    expect(await collect(source.read())).toEqual(expected)
    expect(await collect(source.read())).toEqual(expected)
    await source.close()
    expect(await readdir(spools)).toEqual([])
  })

  it('a copy of standard input cut short by a bad line is never read as the input', async () => {
    const stdin = Readable.from(['{"data":"0x01"}\n', `{"data":"0x${'00'.repeat(MAX_ITEM_LINE_BYTES)}"}\n`])
    const source = itemSource('-', { stdin, tempDir: dir })
    await expect(collect(source.read())).rejects.toThrow(/^stdin line 2: line longer than/)
    await expect(collect(source.read())).rejects.toBeInstanceOf(InvalidInputError)
    await source.close()
  })
})
