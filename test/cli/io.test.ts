import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputSize, readJsonFile, readJsonLines, writeJson } from '../../src/cli/io.js'
import { InvalidInputError } from '../../src/errors.js'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dsfg-cli-io-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content)
  return path
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

describe('readJsonLines', () => {
  it('yields parsed lines with their line numbers and bytes read, skipping blank ones, accepting CRLF and a BOM', async () => {
    const path = await file('ok.jsonl', '\uFEFF{"a":1}\r\n\n   \n[2]\n"x"')
    expect(await collect(readJsonLines(path))).toEqual([
      { line: 1, value: { a: 1 }, bytes: 12 },
      { line: 4, value: [2], bytes: 21 },
      { line: 5, value: 'x', bytes: 24 }
    ])
    expect(await inputSize(path)).toBe(24)
    expect(await inputSize('-')).toBeUndefined()
  })

  it('names the file and line of malformed JSON', async () => {
    const path = await file('bad.jsonl', '{"a":1}\n{"a":\n{"a":3}\n')
    const err = await collect(readJsonLines(path)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidInputError)
    expect((err as Error).message).toMatch(new RegExp(`^${path} line 2: malformed JSON`))
  })

  it('reads - from the given stdin', async () => {
    const stdin = Readable.from(['{"a":', '1}\n{"b":2}\n'])
    expect(await collect(readJsonLines('-', { stdin }))).toEqual([
      { line: 1, value: { a: 1 }, bytes: 8 },
      { line: 2, value: { b: 2 }, bytes: 16 }
    ])
  })

  it('refuses a line over the limit once the limit is passed, without reading the rest of it', async () => {
    const path = await file('long.jsonl', `${'1'.repeat(16)}\n${'2'.repeat(17)}\n3\n`)
    expect(await collect(readJsonLines(path, { maxLineBytes: 16 })).catch((e: unknown) => e)).toMatchObject({
      name: 'InvalidInputError',
      message: `${path} line 2: line longer than 16 bytes`
    })
    // A CRLF line break is not part of the line; a last line without a break counts too.
    expect(await collect(readJsonLines('-', { stdin: Readable.from([`${'1'.repeat(16)}\r\n${'2'.repeat(16)}`]), maxLineBytes: 16 }))).toHaveLength(2)
    await expect(collect(readJsonLines('-', { stdin: Readable.from(['1'.repeat(17)]), maxLineBytes: 16 }))).rejects.toThrow(/line 1: line longer/)
    // A line that never ends: read only up to the limit (and one chunk), then refused.
    let served = 0
    const endless = new Readable({
      read() {
        served += 65536
        setImmediate(() => this.push('7'.repeat(65536)))
      }
    })
    await expect(collect(readJsonLines('-', { stdin: endless, maxLineBytes: 1 << 20 }))).rejects.toThrow(/^stdin line 1: line longer than 1048576 bytes$/)
    expect(served).toBeLessThan(4 << 20)
  }, 10_000)

  it('refuses a line that is not UTF-8', async () => {
    const stdin = Readable.from([Buffer.from([0x22, 0xff, 0x22, 0x0a])])
    await expect(collect(readJsonLines('-', { stdin }))).rejects.toThrow(/^stdin line 1: not UTF-8 text$/)
  })

  it('rejects a missing file with ENOENT and a directory with InvalidInputError', async () => {
    await expect(collect(readJsonLines(join(dir, 'absent')))).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(collect(readJsonLines(dir))).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('stops at an aborted signal', async () => {
    const path = await file('abort.jsonl', '1\n2\n3\n')
    const controller = new AbortController()
    const seen: unknown[] = []
    const reading = (async () => {
      for await (const { value } of readJsonLines(path, { signal: controller.signal })) {
        seen.push(value)
        controller.abort()
      }
    })()
    await expect(reading).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen).toEqual([1])
  })

  it('stops cleanly when the consumer stops early', async () => {
    const path = await file('many.jsonl', '1\n2\n3\n')
    for await (const { value } of readJsonLines(path)) {
      expect(value).toBe(1)
      break
    }
  })
})

describe('readJsonFile', () => {
  it('parses a whole file or stdin', async () => {
    expect(await readJsonFile(await file('a.json', '\uFEFF["0x01",\n"0x02"]\n'))).toEqual(['0x01', '0x02'])
    expect(await readJsonFile('-', { stdin: Readable.from(['[1,', '2]']) })).toEqual([1, 2])
  })

  it('names the file when it is malformed', async () => {
    const path = await file('b.json', '["0x01",')
    await expect(readJsonFile(path)).rejects.toThrow(new RegExp(`^${path}: malformed JSON`))
  })

  it('rejects a missing file with ENOENT', async () => {
    await expect(readJsonFile(join(dir, 'absent.json'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('writeJson', () => {
  it('writes one line of JSON', async () => {
    const out = new PassThrough()
    const chunks: string[] = []
    out.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')))
    await writeJson(out, { root: '0x00', n: 1, v: null })
    expect(chunks.join('')).toBe('{"root":"0x00","n":1,"v":null}\n')
  })

  it('waits for a backed-up stream to drain', async () => {
    const out = new PassThrough({ highWaterMark: 1 })
    const done = writeJson(out, 'x'.repeat(100))
    let settled = false
    void done.then(() => {
      settled = true
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(settled).toBe(false)
    out.resume()
    await done
  })
})
