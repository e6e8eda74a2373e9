import type { Socket } from 'node:net'
import { getNetConfig } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it, vi } from 'vitest'
import { closesWithin, rawSocket } from '../helpers/raw-socket.js'
import { expectOneLineError, runCli, serveCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 60_000 })

const cli = useBuiltCli('dsfg-host-limit-')

/** Opens a TCP connection to `port` on 127.0.0.1 (kept in `keep`) and says whether the server closed it within `ms`. */
async function closedWithin(port: number, ms: number, keep: Socket[]): Promise<boolean> {
  const { socket, closed } = await rawSocket(port)
  keep.push(socket)
  return closesWithin(closed, ms)
}

describe('dsfg serve --max-connections-per-host', () => {
  it('closes at once a connection past the limit from one address, and leaves those within it open', async () => {
    const server = await serveCli(cli.bin, ['--data', ':memory:', '--max-connections-per-host', '2'])
    const sockets: Socket[] = []
    try {
      const port = Number(getNetConfig(multiaddr(server.info.addrs[0]!)).port)
      // Sockets that never start the handshake: libp2p gives them seconds before its upgrade timeout.
      expect(await closedWithin(port, 300, sockets)).toBe(false)
      expect(await closedWithin(port, 300, sockets)).toBe(false)
      expect(await closedWithin(port, 2_000, sockets)).toBe(true)
    } finally {
      for (const s of sockets) s.destroy()
      expect(await server.stop()).toBe(0)
    }
  })

  it('must be a whole number', async () => {
    for (const value of ['-1', '1.5', 'many']) {
      expectOneLineError(
        await runCli(cli.bin, ['serve', '--data', ':memory:', `--max-connections-per-host=${value}`]),
        2,
        /^dsfg: --max-connections-per-host must be a whole number$/
      )
    }
  })
})
