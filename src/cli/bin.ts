#!/usr/bin/env node
// The version check runs before anything that needs Node 22 is loaded: `./main.js` (and with it libp2p and the
// rest) is imported dynamically only once the check has passed, so an old Node prints one clear line instead
// of a syntax or missing-API error from deep inside a dependency. The static imports are import-free modules and
// Node's own (`enableCompileCache`, Node 22.1 on, is looked up on `node:module`, not imported by name).
import * as nodeModule from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { EXIT_PIPE, EXIT_USAGE } from './exit-codes.js'
import { checkNodeVersion } from './node-version.js'

const problem = checkNodeVersion(process.versions.node)
if (problem !== undefined) {
  process.stderr.write(`dsfg: ${problem}\n`)
  process.exitCode = EXIT_USAGE
} else {
  // Node's on-disk cache of the modules it compiled (NODE_DISABLE_COMPILE_CACHE=1 turns it off): compiling the
  // modules a command loads was most of its start-up, 1.05-1.12 s of CPU for `dsfg id`, 0.70-0.73 s with the
  // cache. A burst of joiners started together on a few cores spent that long on start-up alone before they
  // could dial. In the user's own cache directory, not Node's default in the shared temporary one: there
  // another user could make the directory first and hand us compiled code. Where it cannot be made, no cache.
  nodeModule.enableCompileCache?.(compileCacheDir())
  // A reader that leaves early (`dsfg items … | head`) fails the next write with EPIPE, which an unheard 'error'
  // event turned into a stack trace. Node ignores SIGPIPE; end as a program killed by it does, without a word.
  // What a command stored is safe: the stores write ahead (as for a kill), and the node's peers see a peer leave.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_PIPE)
    throw err
  })
  const { main } = await import('./main.js')
  const code = await main(process.argv.slice(2))
  process.exitCode = code
  // Everything is stopped by now, but libp2p leaves a timer or two behind its stop() (gossipsub's heartbeat,
  // the address manager's): waiting for them kept every command alive about a second after its work was
  // done. Exit once stdout and stderr have flushed what was written to them.
  const flushed = (stream: NodeJS.WriteStream): Promise<void> => new Promise((resolve) => stream.write('', () => resolve()))
  await Promise.all([flushed(process.stdout), flushed(process.stderr)])
  process.exit(code)
}

/** `$XDG_CACHE_HOME/dsfg/compile-cache`, else `~/.cache/dsfg/compile-cache`. */
function compileCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'dsfg', 'compile-cache')
}
