import { execFile } from 'node:child_process'
import { access, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { inject } from 'vitest'
import { buildPage } from '../../web/build.js'
import { until } from './wait.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** tsc over the whole tree, on a loaded 2-vCPU machine; the files waiting for another's build wait as long. */
export const CLI_BUILD_TIMEOUT_MS = 180_000

let built: Promise<string> | undefined

/**
 * The compiled `cli/bin.js`, built once per `vitest run`: `src/` compiled with the build config into the run's
 * directory (made by `built-cli.global.ts`), so the tests run the real executable without racing anyone
 * else's `npm run build` over `dist/`. The test files run in two worker processes (the files of one worker
 * share `built`): the first to get here takes a lock (an exclusive `mkdir`) and compiles; the other waits for
 * its `done` marker. The directory gets a
 * `package.json` (ESM) and a `node_modules` link so the output resolves its dependencies as `dist/` would.
 * The compile does not type-check (`--noCheck`): with `isolatedModules` each file's output is the same
 * without the types (checked: the same bytes either way), and `npm run typecheck` is where type errors fail.
 * Checking took 27 s of the 40 s this build took on a loaded 2-vCPU machine, with every CLI test file waiting.
 */
export function builtCliBin(): Promise<string> {
  built ??= buildOnce()
  return built
}

async function buildOnce(): Promise<string> {
  const dir = inject('cliBuildDir')
  if (dir === undefined) throw new Error('no CLI build directory: run with a vitest config whose globalSetup has built-cli.global.ts')
  const bin = join(dir, 'dist', 'cli', 'bin.js')
  const done = join(dir, 'done')
  const owner = await mkdir(join(dir, 'lock')).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false
      throw err
    }
  )
  if (owner) {
    await compile(dir).then(
      () => writeFile(done, ''),
      (err: unknown) => writeFile(done, String(err))
    )
  } else {
    await until(() => access(done).then(() => true, () => false), 'another test file to compile the CLI', CLI_BUILD_TIMEOUT_MS, 200)
  }
  const failure = await readFile(done, 'utf8')
  if (failure !== '') throw new Error(`compiling the CLI failed: ${failure}`)
  await access(bin)
  return bin
}

async function compile(dir: string): Promise<void> {
  // The package's own manifest: ESM, and the name and version `dsfg --version` reads.
  await copyFile(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'))
  await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const args = [tsc, '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist'), '--declaration', 'false', '--sourceMap', 'false', '--noCheck']
  await promisify(execFile)(process.execPath, args, { cwd: REPO_ROOT }).catch((err: { stdout?: string }) => {
    console.warn(`tsc reported errors (output still emitted):\n${err.stdout ?? String(err)}`)
  })
  // The page `dsfg serve --web` serves, where `npm run build` puts it beside the CLI.
  await buildPage(join(dir, 'dist', 'web'))
}
