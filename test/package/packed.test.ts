import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import * as esbuild from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../helpers/built-cli.js'

const run = promisify(execFile)

/** tsc over `src/` with declarations, `npm pack`, an unpack: on a loaded 2-vCPU machine, as the CLI build allows. */
const PACK_TIMEOUT_MS = 180_000
/** Each README example starts its own nodes on 127.0.0.1 and stops them: a few seconds each here. */
const EXAMPLE_TIMEOUT_MS = 60_000

/** The modules only `dsfg/node` may load: an application with its own libp2p node must not pay for them. */
const TRANSPORTS = ['@libp2p/tcp', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux']

interface Packed {
  /** Paths inside the tarball (`package/` left off). */
  files: string[]
  /** The empty project the tarball is installed into. */
  project: string
  /** The installed package: node_modules/dsfg of the project, holding the tarball's files and nothing else. */
  installed: string
}

/**
 * Builds the package from the working tree into a scratch copy, packs it as `npm publish` would, and installs
 * the tarball into an empty ESM project. The copy is the files git tracks or would track, so `files` in
 * package.json decides what goes in, as it will on publish, and the repository's own `dist/` is never touched.
 * `npm install <tarball>` needs the registry's package metadata, which the npm cache `npm ci` leaves has no
 * copy of: the tarball is unpacked as `node_modules/dsfg` instead, with the repository's dependencies linked
 * beside it, and a test below checks that everything the package imports is one of its declared dependencies.
 */
async function packAndInstall(work: string): Promise<Packed> {
  const stage = join(work, 'stage')
  const { stdout: listed } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    maxBuffer: 16 << 20
  })
  for (const path of listed.split('\0')) {
    // node_modules is a link here, not a directory, so git's ignore rule misses it; deleted files are still listed.
    if (path === '' || path.startsWith('node_modules') || !existsSync(join(REPO_ROOT, path))) continue
    await mkdir(dirname(join(stage, path)), { recursive: true })
    await copyFile(join(REPO_ROOT, path), join(stage, path))
  }
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  await run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')], { cwd: REPO_ROOT })
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: stage })
  const [pack] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[]
  if (pack === undefined) throw new Error(`npm pack reported no tarball: ${stdout}`)

  const project = join(work, 'project')
  const installed = join(project, 'node_modules', 'dsfg')
  await mkdir(installed, { recursive: true })
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'readme-examples', private: true, type: 'module' }))
  await run('tar', ['-xzf', join(work, pack.filename), '-C', installed, '--strip-components=1'])
  const dependencies = await realpath(join(REPO_ROOT, 'node_modules'))
  for (const name of await readdir(dependencies)) {
    if (!name.startsWith('.')) await symlink(join(dependencies, name), join(project, 'node_modules', name))
  }
  return { files: pack.files.map((f) => f.path), project, installed }
}

/** The module specifiers of a compiled file: `import … from`, `export … from`, bare `import '…'` and `import('…')`. */
const IMPORT_SPECIFIERS = /^\s*(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*\(?\s*)['"]([^'"\n]+)['"]/gm

/** The ```ts blocks of a markdown file, in order. */
function typescriptBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
}

/** The module URLs Node loads for `import(specifier)` in `project`, recorded by a resolve hook. */
async function loadedBy(project: string, specifier: string): Promise<string[]> {
  const script = [
    "import { registerHooks } from 'node:module'",
    'const urls = []',
    'registerHooks({ resolve(spec, context, next) { const result = next(spec, context); urls.push(result.url); return result } })',
    `await import(${JSON.stringify(specifier)})`,
    'console.log(JSON.stringify(urls))'
  ].join('\n')
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project })
  return JSON.parse(stdout) as string[]
}

/** The package a bare import specifier names (`@scope/name/sub` gives `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

describe('the packed package', () => {
  let work: string
  let packed: Packed

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dsfg-packed-'))
    packed = await packAndInstall(work)
  }, PACK_TIMEOUT_MS)

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('holds the build, the README and the LICENSE; no tests, sources, fixtures or source maps', () => {
    const { files } = packed
    for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/core.js', 'dist/node.js', 'dist/cli/bin.js']) {
      expect(files).toContain(file)
    }
    for (const file of ['dist/index.d.ts', 'dist/core.d.ts', 'dist/node.d.ts']) expect(files).toContain(file)
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f))).toEqual([])
    expect(files.filter((f) => f.endsWith('.map') || f.startsWith('dist/fixtures/') || f.includes('.test.'))).toEqual([])
  })

  it('imports nothing but its declared dependencies and Node built-ins, and maps no source it does not ship', async () => {
    const manifest = JSON.parse(await readFile(join(packed.installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    const declared = new Set(Object.keys(manifest.dependencies))
    const undeclared = new Set<string>()
    for (const file of packed.files.filter((f) => f.endsWith('.js'))) {
      const source = await readFile(join(packed.installed, file), 'utf8')
      expect(source, file).not.toContain('sourceMappingURL')
      for (const [, specifier] of source.matchAll(IMPORT_SPECIFIERS)) {
        if (specifier!.startsWith('.') || specifier!.startsWith('node:')) continue
        if (!declared.has(packageOf(specifier!))) undeclared.add(specifier!)
      }
    }
    expect([...undeclared]).toEqual([])
  })

  it('keeps TCP, noise and yamux out of the root: only dsfg/node loads them', async () => {
    const transportsIn = (urls: string[]): string[] => TRANSPORTS.filter((name) => urls.some((url) => url.includes(`/node_modules/${name}/`)))
    expect(transportsIn(await loadedBy(packed.project, 'dsfg'))).toEqual([])
    expect(transportsIn(await loadedBy(packed.project, 'dsfg/node'))).toEqual(TRANSPORTS)
  }, EXAMPLE_TIMEOUT_MS)

  it('gives a bundler for the browser the browser entries: IndexedDB and WebSockets, no LevelDB, TCP or node:*', async () => {
    const nodeImports: string[] = []
    const result = await esbuild.build({
      stdin: { contents: "export * from 'dsfg'\nexport { createDsfgNode } from 'dsfg/node'\n", resolveDir: packed.project },
      absWorkingDir: packed.project,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'record-node-imports',
          setup(build) {
            build.onResolve({ filter: /^node:/ }, (args) => {
              nodeImports.push(args.path)
              return { path: args.path, external: true }
            })
          }
        }
      ]
    })
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs).toEqual(expect.arrayContaining(['node_modules/dsfg/dist/browser.js', 'node_modules/dsfg/dist/browser-node.js']))
    expect(inputs.filter((path) => /dsfg\/dist\/(index|node)\.js$|classic-level|@libp2p\/tcp\//.test(path))).toEqual([])
    expect(nodeImports).toEqual([])
  }, EXAMPLE_TIMEOUT_MS)

  it('exports the service, proofs, stores and errors at the root; cores and tunables from dsfg/core; the node from dsfg/node', async () => {
    const script = [
      "const [root, core, node] = await Promise.all([import('dsfg'), import('dsfg/core'), import('dsfg/node')])",
      'console.log(JSON.stringify({ root: Object.keys(root), core: Object.keys(core), node: Object.keys(node) }))'
    ].join('\n')
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: packed.project })
    const { root, core, node } = JSON.parse(stdout) as Record<'root' | 'core' | 'node', string[]>
    expect(root).toEqual(
      expect.arrayContaining(['dsfg', 'createProof', 'verifyProof', 'verifyRangeProof', 'MemoryStore', 'LevelStore', 'openStore'])
    )
    expect(root).toEqual(expect.arrayContaining(['InvalidProofError', 'AbortError', 'keccak256', 'EMPTY_ROOT', 'toHex', 'uint64BE']))
    expect(core).toEqual(expect.arrayContaining(['TrieSync', 'StateSyncer', 'Queue', 'FSMManager', 'importSorted', 'MAX_ITEM_BYTES']))
    expect(node).toEqual(['SERVER_CONNECTION_LIMITS', 'createDsfgNode'])
    for (const name of ['createDsfgNode', 'TrieSync', 'StateSyncer', 'Queue', 'TopicSync', 'MAX_ITEM_BYTES']) expect(root).not.toContain(name)
    for (const fixture of ['accountEntries', 'topicItems', 'buildFixtureTrie']) expect([...root, ...core, ...node]).not.toContain(fixture)
  }, EXAMPLE_TIMEOUT_MS)

  it('type-checks and runs every TypeScript example of its README against the installed package', async () => {
    const examples = typescriptBlocks(await readFile(join(packed.installed, 'README.md'), 'utf8'))
    expect(examples.length).toBeGreaterThanOrEqual(3)
    const { project } = packed
    for (const [i, example] of examples.entries()) await writeFile(join(project, `example-${i + 1}.ts`), example)
    const compilerOptions = {
      target: 'ES2023',
      lib: ['ES2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      types: ['node'],
      // The libp2p packages' own declarations do not all check against each other; DSFG's are checked where built.
      skipLibCheck: true,
      outDir: 'out'
    }
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['example-*.ts'] }))
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).catch((err: { stdout?: string }) => {
      throw new Error(`the README examples do not type-check against the package:\n${err.stdout ?? String(err)}`)
    })
    for (const i of examples.keys()) {
      // Each example must end by itself (its nodes stopped); a hang is a failure, not a test timeout.
      await run(process.execPath, [join('out', `example-${i + 1}.js`)], { cwd: project, timeout: EXAMPLE_TIMEOUT_MS }).catch(
        (err: { stdout?: string; stderr?: string; signal?: string }) => {
          throw new Error(`README example ${i + 1} failed (${err.signal ?? 'exit'}):\n${err.stdout ?? ''}\n${err.stderr ?? String(err)}`)
        }
      )
    }
  }, 4 * EXAMPLE_TIMEOUT_MS)
})
