import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const SHIM = fileURLToPath(new URL('./vitest-shim.ts', import.meta.url))

/**
 * A test page's script, bundled for the browser the way an application's bundler would take the package
 * (`browser` condition), with `vitest` aliased to the in-page shim.
 */
export async function bundlePage(entry: string): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
    alias: { vitest: SHIM }
  })
  return result.outputFiles[0]!.text
}

/** Serves `script` in an empty page on 127.0.0.1 (IndexedDB needs a real origin); `close()` stops it. */
export async function servePage(script: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === '/test.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
    } else {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/test.js"></script>')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
