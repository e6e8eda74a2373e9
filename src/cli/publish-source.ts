import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { MAX_ITEM_BYTES } from '../constants.js'
import { InvalidInputError } from '../errors.js'
import { fromHex, toHex } from '../util/hex.js'
import { inputName, readJsonLines, STDIN_PATH } from './io.js'
import type { ReadItems } from './publish-input.js'

/**
 * The longest input line `publish` reads: the largest item (`MAX_ITEM_BYTES`) as hex in `{"data":"0x…"}`, with
 * room to spare for spaces. A longer line cannot hold a valid item, so it is refused before it is all read.
 */
export const MAX_ITEM_LINE_BYTES = 2 * MAX_ITEM_BYTES + 4096

/** Spooled standard input is written to its file in pieces of about this many characters. */
const SPOOL_WRITE_CHARS = 1024 * 1024

/** One `{"data":"0x…"}` line as item bytes. */
export function parseItemLine(json: unknown, where: string): Uint8Array {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidInputError(`${where}: expected an object {"data":"0x…"}`)
  }
  const record = json as Record<string, unknown>
  for (const field of Object.keys(record)) {
    if (field !== 'data') throw new InvalidInputError(`${where}: unknown field ${JSON.stringify(field)}`)
  }
  if (!('data' in record)) throw new InvalidInputError(`${where}: missing "data"`)
  const data = fromHex(record['data'] as string, `${where}: data`)
  if (data.length === 0 || data.length > MAX_ITEM_BYTES) {
    throw new InvalidInputError(`${where}: item must be 1 to ${MAX_ITEM_BYTES} bytes`)
  }
  return data
}

export interface ItemSourceOptions {
  /** What `-` reads. @default process.stdin */
  readonly stdin?: Readable
  /** Stops reading between lines. */
  readonly signal?: AbortSignal
  /** Where standard input is copied to, in a directory of its own. @default os.tmpdir() */
  readonly tempDir?: string
}

/** The items of a publish's input file, readable more than once; `close()` removes what reading it left behind. */
export interface ItemSource {
  readonly read: ReadItems
  close(): Promise<void>
}

/**
 * The items of `path` (JSON lines `{"data":"0x…"}`, `-` for standard input), each line read with the bound of
 * `MAX_ITEM_LINE_BYTES`, for a publish to read twice. A file is read anew each time. Standard input can be read
 * only once: its first read copies each item to a file in a directory of its own under the system's temporary
 * directory (disk, not memory, holds the input), and later reads read that copy.
 */
export function itemSource(path: string, options: ItemSourceOptions = {}): ItemSource {
  const name = inputName(path)
  const lines = async function* (file: string, stdin?: Readable): AsyncGenerator<Uint8Array> {
    const read = readJsonLines(file, { stdin, maxLineBytes: MAX_ITEM_LINE_BYTES, signal: options.signal })
    for await (const { line, value } of read) yield parseItemLine(value, `${name} line ${line}`)
  }
  if (path !== STDIN_PATH) return { read: () => lines(path), close: async () => undefined }

  let started = false
  let spool: { dir: string; file: string; complete: boolean } | undefined
  const copyStdin = async function* (): AsyncGenerator<Uint8Array> {
    const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'dsfg-publish-stdin-'))
    const state = { dir, file: join(dir, 'items.jsonl'), complete: false }
    spool = state
    const out = await open(state.file, 'wx', 0o600)
    try {
      let pending: string[] = []
      let chars = 0
      for await (const item of lines(STDIN_PATH, options.stdin)) {
        const text = `{"data":"${toHex(item)}"}\n`
        pending.push(text)
        chars += text.length
        if (chars >= SPOOL_WRITE_CHARS) {
          await out.write(pending.join(''))
          pending = []
          chars = 0
        }
        yield item
      }
      await out.write(pending.join(''))
      state.complete = true
    } finally {
      await out.close()
    }
  }
  const readCopy = async function* (): AsyncGenerator<Uint8Array> {
    // A copy cut short (the first read failed or stopped) is not the input: nothing may read it as if it were.
    if (spool?.complete !== true) throw new InvalidInputError(`${name} was not read to its end`)
    yield* lines(spool.file)
  }
  return {
    read: () => {
      if (!started) {
        started = true
        return copyStdin()
      }
      return readCopy()
    },
    close: async () => {
      if (spool !== undefined) await rm(spool.dir, { recursive: true, force: true })
    }
  }
}
