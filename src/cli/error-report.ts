import { DsfgError, InterruptedError, InvalidProofError, MissingNodeError, UsageError } from '../errors.js'
import { toHex } from '../util/hex.js'
import { EXIT_FAILURE, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE } from './exit-codes.js'

/** What the top-level handler prints (after `dsfg: `) and the exit code it returns. */
export interface ErrorReport {
  readonly message: string
  readonly exitCode: number
}

/** Readable text for the Node system errors a user causes with a bad path. */
const SYSTEM_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left on device'
}

/** Why a listen address failed, for the errors a user causes with a bad `--listen` or `--ws`. */
const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: 'no such address on this machine',
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted'
}

/**
 * libp2p's `UnsupportedListenAddressesError` lists each failed address on a line of its own ("  ADDR: MESSAGE",
 * the message with its stack) after advice about its own configuration: one clause per address instead.
 */
function listenFailure(message: string): string {
  const failures = [...message.matchAll(/^ {2}(\/\S+): (.*)$/gm)].map(([, address, reason]) => {
    const code = /\b(E[A-Z]{3,})\b/.exec(reason ?? '')?.[1]
    const text = code === undefined ? reason : `${LISTEN_ERRORS[code] ?? code} (${code})`
    return `${address}: ${text}`
  })
  return failures.length === 0 ? `cannot listen: ${message}` : `cannot listen on ${failures.join('; ')}`
}

interface SystemError extends Error {
  code: string
  path?: string
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && 'syscall' in err
}

/** Why a file operation failed, for a message that names the file: "permission denied", else the error's message. */
export function failureText(err: unknown): string {
  if (isSystemError(err)) return SYSTEM_ERRORS[err.code] ?? err.message
  return err instanceof Error ? err.message : String(err)
}

/** The contract is one line on stderr: whatever a message holds, newlines must not split it. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim()
}

/**
 * Turns anything a command threw into one line and an exit code: usage errors exit 2, bad data, proofs,
 * files and stores exit 1, a stop by SIGINT or SIGTERM 130 or 143. Anything else is a bug and says so ("internal error"), still on one line.
 */
export function reportError(err: unknown): ErrorReport {
  if (err instanceof UsageError) return { message: oneLine(err.message), exitCode: EXIT_USAGE }
  if (err instanceof InvalidProofError) {
    const message = /^invalid proof\b/i.test(err.message) ? err.message : `invalid proof: ${err.message}`
    return { message: oneLine(message), exitCode: EXIT_FAILURE }
  }
  if (err instanceof MissingNodeError) {
    const hash = toHex(err.hash)
    const message = err.message.includes(hash) ? err.message : `${err.message}: ${hash}`
    return { message: oneLine(message), exitCode: EXIT_FAILURE }
  }
  if (err instanceof InterruptedError) {
    return { message: oneLine(err.message), exitCode: err.signal === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM }
  }
  if (err instanceof DsfgError) return { message: oneLine(err.message), exitCode: EXIT_FAILURE }
  if (err instanceof Error && err.name === 'UnsupportedListenAddressesError') {
    return { message: oneLine(listenFailure(err.message)), exitCode: EXIT_FAILURE }
  }
  if (isSystemError(err)) {
    const text = SYSTEM_ERRORS[err.code]
    const message = text !== undefined && err.path !== undefined ? `${err.path}: ${text}` : err.message
    return { message: oneLine(message), exitCode: EXIT_FAILURE }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { message: oneLine(`internal error: ${message}`), exitCode: EXIT_FAILURE }
}
