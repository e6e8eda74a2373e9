import type { CliCommand } from '../command.js'
import { plannedCommand } from '../command.js'
import { demoCommand } from './demo.js'
import { getCommand } from './get.js'
import { importCommand } from './import.js'
import { serveCommand } from './serve.js'
import { syncCommand } from './sync.js'
import { verifyProofCommand } from './verify-proof.js'

/**
 * Commands of DESIGN.md section 5 that are not built yet. Each is listed by `dsfg --help` and answers "not
 * implemented yet" (exit 2). To build one, write `commands/<name>.ts` with `defineCommand` and swap its entry
 * here for the real command.
 */
const PLANNED: readonly CliCommand[] = [
  plannedCommand(
    'publish',
    'append JSON lines {"data":"0x…"} to a topic and checkpoint them → {"head","checkpoint"}',
    'dsfg publish --data DIR --topic T FILE'
  ),
  plannedCommand(
    'items',
    'print a topic\'s items as JSON lines {"n","data"} in order',
    'dsfg items --data DIR --topic T [--from N] [--to N]'
  ),
]

/** Every command, in the order `dsfg --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  importCommand,
  getCommand,
  verifyProofCommand,
  serveCommand,
  syncCommand,
  ...PLANNED,
  demoCommand
]

export function findCommand(name: string): CliCommand | undefined {
  return COMMANDS.find((command) => command.name === name)
}
