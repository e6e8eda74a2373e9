import { readFileSync } from 'node:fs'
import { UsageError } from '../errors.js'
import { type CliIo, processIo } from './command.js'
import { COMMANDS, findCommand } from './commands/index.js'
import { reportError } from './error-report.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_PIPE, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE } from './exit-codes.js'

/** The text of `dsfg --help`. */
export function formatHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'dsfg: verifiable sync of gossipsub topics and Merkle-Patricia tries',
    '',
    'Usage: dsfg <command> [options]',
    '       dsfg <command> --help',
    '       dsfg --version',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Results are JSON on stdout; progress and logs go to stderr; an error is one line on stderr.',
    '',
    'Exit codes:',
    `  ${EXIT_OK}  success`,
    `  ${EXIT_FAILURE}  invalid data or proof, missing file or trie node, store error, unusable node key`,
    `  ${EXIT_USAGE}  usage error: unknown command or option, missing or bad argument, command not implemented yet,`,
    '     Node.js older than 22',
    `  ${EXIT_SIGINT}  stopped by SIGINT, ${EXIT_SIGTERM} by SIGTERM (what was stored is kept: run again to resume)`,
    `  ${EXIT_PIPE}  standard output closed early (as by \`| head\`), with no message`,
    ''
  ].join('\n')
}

const HELP_WORDS: ReadonlySet<string> = new Set(['--help', '-h', 'help'])

/**
 * The package's version: from the nearest package.json named `dsfg` above this file (two levels up in `src/`
 * and `dist/` alike; a build elsewhere, such as the tests', finds it further up or not at all).
 */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'dsfg' && pkg.version !== undefined) return pkg.version
    } catch {
      // No package.json here (or not JSON): look further up.
    }
    if (dir.pathname === '/') return 'unknown'
  }
}

/**
 * Runs the command line `argv` (without `node` and the script) and resolves to the exit code. Never rejects:
 * every error becomes one line `dsfg: <message>` on `io.stderr`. Set `DSFG_DEBUG=1` to also get the stack.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv
  try {
    if (name === undefined || HELP_WORDS.has(name)) {
      io.stdout.write(formatHelp())
      return EXIT_OK
    }
    if (name === '--version' || name === '-V') {
      io.stdout.write(`${packageVersion()}\n`)
      return EXIT_OK
    }
    const entry = findCommand(name)
    if (entry === undefined) {
      throw new UsageError(`unknown command ${JSON.stringify(name)} (see dsfg --help)`)
    }
    const command = await entry.load()
    await command.execute(rest, io)
    return EXIT_OK
  } catch (err) {
    const report = reportError(err)
    io.stderr.write(`dsfg: ${report.message}\n`)
    if (process.env['DSFG_DEBUG'] && err instanceof Error && err.stack !== undefined) {
      io.stderr.write(`${err.stack}\n`)
    }
    return report.exitCode
  }
}
