/**
 * Builds the page `dsfg serve --web` serves into `dist/web/` (or the directory given): `web/app.ts` bundled for
 * the browser with esbuild (minified, the package's browser entries), beside `web/index.html`. Run by
 * `npm run build`; prints the page's sizes.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'

const WEB_DIR = fileURLToPath(new URL('.', import.meta.url))

export async function buildPage(outdir: string): Promise<{ bytes: number; gzipped: number }> {
  await mkdir(outdir, { recursive: true })
  const result = await esbuild.build({
    entryPoints: [join(WEB_DIR, 'app.ts')],
    outfile: join(outdir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'warning',
    write: false
  })
  const app = result.outputFiles[0]!
  await writeFile(app.path, app.contents)
  await copyFile(join(WEB_DIR, 'index.html'), join(outdir, 'index.html'))
  return { bytes: app.contents.length, gzipped: gzipSync(app.contents).length }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2] ?? 'dist/web'
  const { bytes, gzipped } = await buildPage(outdir)
  console.log(`web page: ${join(outdir, 'app.js')} ${bytes} B (${gzipped} B gzipped)`)
}
