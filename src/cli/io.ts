import { once } from 'node:events'
import { constants } from 'node:fs'
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises'
import type { Readable, Writable } from 'node:stream'
import { InvalidInputError } from '../errors.js'
import { concatBytes } from '../util/bytes.js'

/** The file name that means standard input. */
export const STDIN_PATH = '-'

export interface ReadInputOptions {
  /** What `-` reads. @default process.stdin */
  readonly stdin?: Readable
  /** Stops reading between lines. */
  readonly signal?: AbortSignal
}

/**
 * The longest line `readJsonLines` reads by default, in bytes: larger than any sensible key and value pair of
 * `import` (a value of megabytes is already odd for a trie), small enough to hold in memory. A longer line is
 * an error, raised once the limit is passed, without reading the rest of the line.
 */
export const MAX_LINE_BYTES = 16 * 1024 * 1024

export interface ReadLinesOptions extends ReadInputOptions {
  /** Longer lines (without their line break) end the read with `InvalidInputError`. @default MAX_LINE_BYTES */
  readonly maxLineBytes?: number
}

/** One parsed line of a JSON-lines file. */
export interface JsonLine {
  /** 1-based line number in the file, for error messages. */
  readonly line: number
  readonly value: unknown
  /** Bytes of the input read up to the end of this line (its line break included), for progress. */
  readonly bytes: number
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

/** The size of a regular file to read, for a percentage; `undefined` for standard input or anything else. */
export async function inputSize(path: string): Promise<number | undefined> {
  if (path === STDIN_PATH) return undefined
  const info = await stat(path).catch(() => undefined)
  return info?.isFile() === true ? info.size : undefined
}

const NEWLINE = 0x0a
const CARRIAGE_RETURN = 0x0d

/**
 * The lines of `input` as bytes (without `\n` or `\r\n`), each with the input's byte count at its end. Holds at
 * most one line: a line longer than `maxLineBytes` throws as soon as the limit is passed. (readline holds the
 * whole line first, however long: a 600 MiB line took the process down.)
 */
async function* splitLines(
  input: AsyncIterable<Uint8Array | string>,
  maxLineBytes: number,
  where: (line: number) => string
): AsyncGenerator<{ text: Uint8Array; bytes: number }> {
  const encoder = new TextEncoder()
  let parts: Uint8Array[] = []
  let partBytes = 0
  let bytes = 0
  let line = 1
  const take = (last: Uint8Array): Uint8Array => {
    const text = parts.length === 0 ? last : concatBytes(...parts, last)
    parts = []
    partBytes = 0
    return text
  }
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? encoder.encode(raw) : raw
    let start = 0
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start)
      const end = newline === -1 ? chunk.length : newline
      if (partBytes + end - start > maxLineBytes + 1) {
        throw new InvalidInputError(`${where(line)}: line longer than ${maxLineBytes} bytes`)
      }
      if (newline === -1) {
        parts.push(chunk.subarray(start))
        partBytes += chunk.length - start
        bytes += chunk.length - start
        break
      }
      bytes += newline + 1 - start
      let text = take(chunk.subarray(start, newline))
      if (text.at(-1) === CARRIAGE_RETURN) text = text.subarray(0, -1)
      // One byte of slack above for the \r of a CRLF line; without it the line must fit.
      if (text.length > maxLineBytes) throw new InvalidInputError(`${where(line)}: line longer than ${maxLineBytes} bytes`)
      yield { text, bytes }
      line++
      start = newline + 1
    }
  }
  if (partBytes > 0) {
    const text = take(new Uint8Array(0))
    if (text.length > maxLineBytes) throw new InvalidInputError(`${where(line)}: line longer than ${maxLineBytes} bytes`)
    yield { text, bytes }
  }
}

/**
 * The lines of a JSON-lines file (`-` for standard input), each parsed, with its line number. Blank lines are
 * skipped. Throws `InvalidInputError` naming the file and line for a line that is not UTF-8 or not valid JSON,
 * or is longer than `maxLineBytes`; a missing file rejects with Node's `ENOENT` error.
 */
export async function* readJsonLines(path: string, options: ReadLinesOptions = {}): AsyncGenerator<JsonLine> {
  options.signal?.throwIfAborted()
  const stdin = options.stdin ?? process.stdin
  const input = path === STDIN_PATH ? stdin : (await openFile(path)).createReadStream()
  const name = inputName(path)
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  let line = 0
  try {
    for await (const { text: bytes, bytes: read } of splitLines(input, options.maxLineBytes ?? MAX_LINE_BYTES, (n) => `${name} line ${n}`)) {
      options.signal?.throwIfAborted()
      line++
      let raw: string
      try {
        raw = decoder.decode(bytes)
      } catch (err) {
        throw new InvalidInputError(`${name} line ${line}: not UTF-8 text`, { cause: err })
      }
      // A byte-order mark is legal at the start of a UTF-8 file and invisible in editors.
      const text = line === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw
      if (text.trim() === '') continue
      yield { line, value: parseJson(text, `${name} line ${line}`), bytes: read }
    }
  } finally {
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

/**
 * Writes `data` to `path` whole or not at all: under another name, synced, then renamed into place, so a crash
 * leaves the old file or the new one, never a truncated one. `mode` applies from the file's creation on.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o666): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`
  try {
    // A leftover of a crashed process with our pid goes first: 'wx' then creates the file with our mode.
    await rm(temp, { force: true })
    const file = await open(temp, 'wx', mode)
    try {
      await file.writeFile(data)
      // On disk before the rename publishes it: after a power cut the rename must not point at missing data.
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (err) {
    // The write's error is the one to report, not a failure to clean up after it.
    await rm(temp, { force: true }).catch(() => undefined)
    throw err
  }
}

/** Why `readSmallFile` refused a file that is there: the message says it, to follow the file's name ("is not a regular file"). */
export class UnreadableFileError extends Error {}

/**
 * The bytes of the file at `path`, at most `maxBytes` of them; undefined when there is none. For the small files a
 * command keeps beside its store (the node key, the keys file, a publish journal). Opened without waiting (a named
 * pipe put in a file's place blocked the open, and a read of it, for ever, deaf to SIGTERM), refused unless it is
 * a regular file, and read into a buffer of `maxBytes + 1`, so a file that grows while it is read or reports a
 * size it does not have (`/proc/self/pagemap` says 0) is refused at the bound, not read whole. A file that is there
 * but refused is an `UnreadableFileError`; a failure of the file system passes through as it came.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
  let file: FileHandle
  try {
    file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const info = await file.stat()
    if (!info.isFile()) throw new UnreadableFileError('is not a regular file')
    if (info.size > maxBytes) throw new UnreadableFileError(`is ${info.size} bytes, more than ${maxBytes}`)
    const buffer = new Uint8Array(maxBytes + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) return buffer.subarray(0, length)
      length += bytesRead
      if (length > maxBytes) throw new UnreadableFileError(`is more than ${maxBytes} bytes`)
    }
  } finally {
    await file.close()
  }
}
