import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'
import { describe, expect, it } from 'vitest'
import { CHROMIUM_PATH, chromiumFound } from './browser/chromium.js'

/**
 * What a bundler makes of the package's browser entries (`dsfg` and `dsfg/node` under the `browser`
 * condition, and `dsfg/core`): esbuild bundles them for the browser. Every `node:*` import is kept out and
 * recorded instead of failing the build, so the test can name each one; a bare Node built-in that resolves to
 * no browser package fails the build.
 */
async function bundleBrowserEntries() {
  const nodeImports: string[] = []
  const result = await esbuild.build({
    entryPoints: { dsfg: 'src/browser.ts', 'dsfg-node': 'src/browser-node.ts', 'dsfg-core': 'src/core.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    minify: true,
    write: false,
    metafile: true,
    outdir: 'out',
    logLevel: 'silent',
    plugins: [
      {
        name: 'record-node-imports',
        setup(build) {
          build.onResolve({ filter: /^node:/ }, (args) => {
            nodeImports.push(`${args.path} from ${args.importer}`)
            return { path: args.path, external: true }
          })
        }
      }
    ]
  })
  return { result, nodeImports }
}

describe('the browser entries', () => {
  it('bundle for the browser with no node:* import, no classic-level and no TCP', { timeout: 60_000 }, async () => {
    const { result, nodeImports } = await bundleBrowserEntries()
    expect(result.errors).toEqual([])
    expect(nodeImports).toEqual([])
    const inputs = Object.keys(result.metafile.inputs)
    const forbidden = inputs.filter((path) => /node_modules\/(classic-level|@libp2p\/tcp)\//.test(path))
    expect(forbidden).toEqual([])
    // The stores and transports the `browser` condition picks are the ones in the bundle.
    expect(inputs).toContain('src/store/browser-level-store.ts')
    expect(inputs.some((path) => path.includes('node_modules/@libp2p/websockets/'))).toBe(true)
    expect(inputs).not.toContain('src/store/level-store.ts')
    expect(inputs).not.toContain('src/store/open-store.ts')

    let bytes = 0
    let gzipped = 0
    for (const file of result.outputFiles) {
      bytes += file.contents.length
      gzipped += gzipSync(file.contents).length
    }
    console.log(`browser bundle of dsfg + dsfg/node + dsfg/core (esbuild, minified): ${bytes} B, ${gzipped} B gzipped`)
  })
})

// `npm test` runs no browser: the tests that drive Chromium are `npm run test:browser` (vitest.browser.config.ts).
it('says in one line whether this machine can run the Chromium tests', () => {
  console.log(
    chromiumFound()
      ? `Chromium at ${CHROMIUM_PATH}: npm run test:browser runs the browser tests (not part of npm test)`
      : `no Chromium at ${CHROMIUM_PATH}: the browser tests (npm run test:browser) cannot run here; apt-get install -y chromium`
  )
})
