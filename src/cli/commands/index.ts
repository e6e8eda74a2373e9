import type { CliCommand } from '../command.js'
import { demoCommand } from './demo.js'
import { demoNodeCommand } from './demo-node.js'
import { getCommand } from './get.js'
import { idCommand } from './id.js'
import { importCommand } from './import.js'
import { serveCommand } from './serve.js'
import { itemsCommand, publishCommand } from './topic-commands.js'
import { syncCommand } from './sync.js'
import { verifyProofCommand } from './verify-proof.js'

/** Every command, in the order `dsfg --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  importCommand,
  getCommand,
  verifyProofCommand,
  idCommand,
  serveCommand,
  syncCommand,
  publishCommand,
  itemsCommand,
  demoCommand
]

/** Commands other commands start as child processes: runnable, but not listed by `dsfg --help`. */
const INTERNAL_COMMANDS: readonly CliCommand[] = [demoNodeCommand]

export function findCommand(name: string): CliCommand | undefined {
  return [...COMMANDS, ...INTERNAL_COMMANDS].find((command) => command.name === name)
}
