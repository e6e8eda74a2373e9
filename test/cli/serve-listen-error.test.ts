import { createServer } from 'node:net'
import { describe, it, vi } from 'vitest'
import { expectOneLineError, runCli, useBuiltCli } from './cli-harness.js'

vi.setConfig({ testTimeout: 60_000 })

const cli = useBuiltCli('dsfg-listen-error-')

describe('dsfg serve --listen on an address it cannot take', () => {
  it('exits 1 with one line naming the address and the reason', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as { port: number }).port
    try {
      const result = await runCli(cli.bin, ['serve', '--data', ':memory:', '--listen', `/ip4/127.0.0.1/tcp/${port}`])
      expectOneLineError(result, 1, new RegExp(`^dsfg: cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${port}: address already in use \\(EADDRINUSE\\)$`))
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  })
})
