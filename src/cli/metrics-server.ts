import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

/** The `--metrics` endpoint of `dsfg serve`: Prometheus text at `GET /metrics`. */
export interface MetricsServer {
  /** Where it answers, with the port the system picked for port 0: `http://127.0.0.1:9464/metrics`. */
  readonly url: string
  close(): Promise<void>
}

/**
 * Serves `registry` as Prometheus text on `host:port` until `close()`. Rejects when the address cannot be
 * listened on (in use, not ours).
 */
export async function startMetricsServer(address: { host: string; port: number }, registry: Registry): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`)
    )
  })
  server.listen(address.port, address.host)
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))])
  const { address: host, family, port } = server.address() as AddressInfo
  return {
    url: `http://${family === 'IPv6' ? `[${host}]` : host}:${port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        // Scrapers keep connections alive: end them, or close() waits for them.
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
