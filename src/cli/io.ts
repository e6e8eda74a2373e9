import { once } from 'node:events'
import { type FileHandle, open } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { InvalidInputError } from '../errors.js'

/** The file name that means standard input. */
export const STDIN_PATH = '-'

export interface ReadInputOptions {
  /** What `-` reads. @default process.stdin */
  readonly stdin?: Readable
  /** Stops reading between lines. */
  readonly signal?: AbortSignal
}

/** One parsed line of a JSON-lines file. */
export interface JsonLine {
  /** 1-based line number in the file, for error messages. */
  readonly line: number
  readonly value: unknown
}

/** How a file is named in messages: its path, or "stdin". */
export function inputName(path: string): string {
  return path === STDIN_PATH ? 'stdin' : path
}

/**
 * Opens (and stats) a named file before anything streams from it, so a missing file or a directory fails
 * here as an ordinary rejection instead of as a stream error that readline may not pass on.
 */
async function openFile(path: string): Promise<FileHandle> {
  const handle = await open(path, 'r')
  try {
    const stat = await handle.stat()
    if (stat.isDirectory()) throw new InvalidInputError(`${path} is a directory, not a file`)
    return handle
  } catch (err) {
    await handle.close()
    throw err
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err)
    throw new InvalidInputError(`${where}: malformed JSON: ${detail}`, { cause: err })
  }
}

/**
 * The lines of a JSON-lines file (`-` for standard input), each parsed, with its line number. Blank lines are
 * skipped. Throws `InvalidInputError` naming the file and line for a line that is not valid JSON; a missing
 * file rejects with Node's `ENOENT` error.
 */
export async function* readJsonLines(path: string, options: ReadInputOptions = {}): AsyncGenerator<JsonLine> {
  options.signal?.throwIfAborted()
  const stdin = options.stdin ?? process.stdin
  const input = path === STDIN_PATH ? stdin : (await openFile(path)).createReadStream({ encoding: 'utf8' })
  const name = inputName(path)
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  try {
    for await (const raw of lines) {
      options.signal?.throwIfAborted()
      line++
      // A byte-order mark is legal at the start of a UTF-8 file and invisible in editors.
      const text = line === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw
      if (text.trim() === '') continue
      yield { line, value: parseJson(text, `${name} line ${line}`) }
    }
  } finally {
    lines.close()
    // The file stream is ours to close (and closes its handle); stdin belongs to the caller.
    if (input !== stdin) input.destroy()
  }
}

/** A whole JSON file (`-` for standard input), parsed; `InvalidInputError` naming the file when malformed. */
export async function readJsonFile(path: string, options: ReadInputOptions = {}): Promise<unknown> {
  options.signal?.throwIfAborted()
  let text: string
  if (path === STDIN_PATH) {
    const chunks: string[] = []
    const stdin = options.stdin ?? process.stdin
    stdin.setEncoding('utf8')
    for await (const chunk of stdin) chunks.push(chunk as string)
    text = chunks.join('')
  } else {
    const handle = await openFile(path)
    try {
      text = await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
  }
  return parseJson(text.startsWith('\uFEFF') ? text.slice(1) : text, inputName(path))
}

/** Writes `value` as one line of JSON, waiting for the stream to drain when it is backed up. */
export async function writeJson(out: Writable, value: unknown): Promise<void> {
  if (!out.write(`${JSON.stringify(value)}\n`)) await once(out, 'drain')
}
