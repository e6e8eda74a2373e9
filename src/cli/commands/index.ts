import type { CliCommand } from '../command.js'

/**
 * What the dispatcher knows of a command before it runs: its name and summary (for `dsfg --help`, and for the
 * command's own definition, which reads them from here), and a way to load it. A command's module, and with the
 * network commands libp2p, is loaded only when that command runs: loading every command made `dsfg get` and
 * `dsfg verify-proof` start by loading what `dsfg serve` needs, 1.1 s of start-up against 0.26-0.48 s for their
 * own modules (without the compile cache, on 2 vCPUs).
 */
export interface CommandEntry {
  readonly name: string
  readonly summary: string
  load(): Promise<CliCommand>
}

/** Each command's one line for `dsfg --help`; its definition takes its summary from here. */
export const SUMMARIES = {
  import: 'build a trie from JSON lines {"key":"0x…","value":"0x…"} → {"root","keys","nodes"}',
  get: 'read a key under a trie root, with --proof its Merkle proof → {"value","proof"}',
  'verify-proof': 'check a Merkle proof for a key against a root, without a store → {"valid":true,"value"}',
  id: 'print the peer id serve and sync run as with --data DIR → {"peerId"}; creates its key if absent',
  serve: 'serve tries (and topics) to peers until SIGINT/SIGTERM; first stdout line {"peerId","addrs"}',
  sync: 'sync a trie root (--root) or a topic (--topic) from peers into --data, verifying every byte',
  publish: 'append JSON lines {"data":"0x…"} to a topic and checkpoint them → {"head","checkpoint"}',
  items: 'print a topic\'s items as JSON lines {"n","data"} in order',
  demo: 'the main job on loopback: a publisher, 3 servers and a late joiner that checkpoint-syncs, all verified',
  'demo-node': '(internal) one process of `dsfg demo`: publisher, server or joiner'
} as const

type CommandName = keyof typeof SUMMARIES

function entry(name: CommandName, load: () => Promise<CliCommand>): CommandEntry {
  return { name, summary: SUMMARIES[name], load }
}

/** Every command, in the order `dsfg --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  entry('import', async () => (await import('./import.js')).importCommand),
  entry('get', async () => (await import('./get.js')).getCommand),
  entry('verify-proof', async () => (await import('./verify-proof.js')).verifyProofCommand),
  entry('id', async () => (await import('./id.js')).idCommand),
  entry('serve', async () => (await import('./serve.js')).serveCommand),
  entry('sync', async () => (await import('./sync.js')).syncCommand),
  entry('publish', async () => (await import('./topic-commands.js')).publishCommand),
  entry('items', async () => (await import('./topic-commands.js')).itemsCommand),
  entry('demo', async () => (await import('./demo.js')).demoCommand)
]

/** Commands other commands start as child processes: runnable, but not listed by `dsfg --help`. */
const INTERNAL_COMMANDS: readonly CommandEntry[] = [entry('demo-node', async () => (await import('./demo-node.js')).demoNodeCommand)]

export function findCommand(name: string): CommandEntry | undefined {
  return [...COMMANDS, ...INTERNAL_COMMANDS].find((command) => command.name === name)
}
