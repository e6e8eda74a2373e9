import type { Socket } from 'node:net'
import { getNetConfig } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory-store.js'
import { createDsfgNode, type DsfgNode } from '../helpers/libp2p.js'
import { rawSocket } from '../helpers/raw-socket.js'
import { until } from '../helpers/wait.js'

describe('the limit of connections per host (connectionLimits.maxConnectionsPerHost)', () => {
  const running: DsfgNode[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await Promise.all(running.splice(0).map((n) => n.stop()))
  })

  async function node(limits?: { maxConnectionsPerHost: number; inboundConnectionThreshold: number }) {
    const n = await createDsfgNode({ store: new MemoryStore(), ...(limits === undefined ? {} : { connectionLimits: limits }) })
    running.push(n)
    return n
  }

  it('counts sockets still in the handshake, refuses past the limit, and admits again once one closes', async () => {
    // libp2p's own limit of 5 new connections a second per host would refuse the dials below first.
    const server = await node({ maxConnectionsPerHost: 3, inboundConnectionThreshold: 100 })
    const address = server.getMultiaddrs()[0]!
    const port = Number(getNetConfig(address).port)
    const first = await node()
    await first.dial(address, { signal: AbortSignal.timeout(5_000) })
    sockets.push((await rawSocket(port)).socket, (await rawSocket(port)).socket)

    const refused = await node()
    await expect(refused.dial(address, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
    expect(server.getConnections().length).toBe(1)

    sockets.shift()!.destroy()
    // The server sees the close a moment later; the next dial is let in.
    await until(async () => {
      try {
        await refused.dial(address, { signal: AbortSignal.timeout(2_000) })
        return true
      } catch {
        return false
      }
    }, 'a dial after the close to be let in', 5_000)
    const expected = [first.peerId.toString(), refused.peerId.toString()].sort()
    const connected = () => server.getConnections().map((c) => c.remotePeer.toString()).sort()
    // The dialler is done a moment before the server has the connection.
    await until(() => connected().length === 2, 'the server to hold both connections', 5_000)
    expect(connected()).toEqual(expected)
  }, 20_000)

  it('is off unless asked for: a node by default takes more connections from one host', async () => {
    const server = await node()
    const address = server.getMultiaddrs()[0]!
    const port = Number(getNetConfig(address).port)
    for (let i = 0; i < 4; i++) sockets.push((await rawSocket(port)).socket)
    const client = await node()
    await client.dial(address, { signal: AbortSignal.timeout(5_000) })
    await until(() => server.getConnections().length === 1, 'the server to hold the connection', 5_000)
  }, 20_000)
})
