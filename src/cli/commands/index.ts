import type { CliCommand } from '../command.js'
import { demoCommand } from './demo.js'
import { getCommand } from './get.js'
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
  serveCommand,
  syncCommand,
  publishCommand,
  itemsCommand,
  demoCommand
]

export function findCommand(name: string): CliCommand | undefined {
  return COMMANDS.find((command) => command.name === name)
}
