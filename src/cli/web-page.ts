import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { UsageError } from '../errors.js'
import type { HostPort } from './host-port.js'

/** What the page reads at `/config.json` to fill in its form: the server's WebSockets addresses, its topics. */
export interface WebPageConfig {
  addrs: string[]
  topics: { name: string; publisher?: string }[]
}

/** Where `npm run build` puts the page (`web/build.ts`): `dist/web/`, beside `dist/cli/`. */
const PAGE_DIR = new URL('../web/', import.meta.url)

/** The page's files, by request path. */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' }
}

export interface WebPageServer {
  url: string
  close(): Promise<void>
}

/**
 * Serves the page (`dsfg serve --web`) and its `/config.json` over HTTP at `at`: three fixed answers, read
 * once at start, and 404 for anything else. Rejects with `UsageError` when the page was not built.
 */
export async function serveWebPage(at: HostPort, config: WebPageConfig): Promise<WebPageServer> {
  const bodies = new Map<string, { body: Uint8Array; type: string }>()
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const body = await readFile(new URL(file, PAGE_DIR)).catch((err: unknown) => {
      throw new UsageError(`--web: the page is not built (${fileURLToPath(new URL(file, PAGE_DIR))} is missing): run npm run build`, { cause: err })
    })
    bodies.set(path, { body, type })
  }
  bodies.set('/config.json', { body: new TextEncoder().encode(JSON.stringify(config)), type: 'application/json' })
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname
    const answer = req.method === 'GET' ? bodies.get(path) : undefined
    if (answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    res.writeHead(200, { 'content-type': answer.type, 'cache-control': 'no-store' }).end(answer.body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(at.port, at.host, () => resolve())
  })
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
