import type { Readable, Writable } from 'node:stream'
import { UsageError } from '../errors.js'
import {
  formatCommandHelp,
  type OptionTable,
  type ParsedArgs,
  type PositionalSpec,
  parseArgs,
  wantsHelp
} from './args.js'

/** The streams a command talks through: injected so tests can run `main` in-process. */
export interface CliIo {
  readonly stdin: Readable
  /** Machine-readable JSON only. */
  readonly stdout: Writable
  /** Progress, logs and the one-line error. */
  readonly stderr: Writable
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }
}

/** What the dispatcher knows about a command: enough for `dsfg --help`, and a way to run it. */
export interface CliCommand {
  readonly name: string
  /** One line for `dsfg --help`. */
  readonly summary: string
  /** The text of `dsfg <name> --help`. */
  help(): string
  /** Parses `argv` (the arguments after the command name) and runs the command; `--help` prints `help()`. */
  execute(argv: readonly string[], io: CliIo): Promise<void>
}

export interface CommandDefinition<T extends OptionTable> {
  readonly name: string
  readonly summary: string
  /** A paragraph for `dsfg <name> --help`: inputs, output JSON, anything surprising. */
  readonly description: string
  readonly options: T
  readonly positionals?: readonly PositionalSpec[]
  /** Writes its result to `io.stdout`; throws a `DsfgError` (or a Node system error) on failure. */
  run(args: ParsedArgs<T>, io: CliIo): Promise<void>
}

/** A command from its option table and implementation; the options' parsed types follow from the table. */
export function defineCommand<const T extends OptionTable>(definition: CommandDefinition<T>): CliCommand {
  const positionals = definition.positionals ?? []
  const help = (): string =>
    formatCommandHelp(definition.name, definition.description, definition.options, positionals)
  return {
    name: definition.name,
    summary: definition.summary,
    help,
    async execute(argv, io) {
      if (wantsHelp(argv)) {
        io.stdout.write(help())
        return
      }
      let args: ParsedArgs<T>
      try {
        args = parseArgs(argv, definition.options, positionals)
      } catch (err) {
        if (!(err instanceof UsageError)) throw err
        throw new UsageError(`${err.message} (see dsfg ${definition.name} --help)`, { cause: err })
      }
      await definition.run(args, io)
    }
  }
}
