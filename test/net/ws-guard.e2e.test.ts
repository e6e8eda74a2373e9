import type { Socket } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import type { Logger } from '@libp2p/interface'
import { yamux } from '@chainsafe/libp2p-yamux'
import { getNetConfig } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { guardedWebSockets } from '../../src/node/ws-guard.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { createDsfgNode } from '../helpers/libp2p.js'
import { closesWithin, type RawSocket, rawSocket } from '../helpers/raw-socket.js'

/** A logger that drops everything (the guard logs refusals and a missing `server` field). */
const silent = () => Object.assign(() => undefined, { enabled: false, trace: () => undefined, error: () => undefined }) as unknown as Logger

describe('WebSocket listeners of a DSFG node (guardedWebSockets)', () => {
  const nodes: Libp2p[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  async function wsServer(
    upgradeTimeoutMs: number,
    maxSocketsPerHost = 0,
    more: { closeGraceMs?: number; inboundUpgradeTimeout?: number } = {}
  ): Promise<{ node: Libp2p; port: number }> {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
      transports: [guardedWebSockets({ maxSocketsPerHost, upgradeTimeoutMs, closeGraceMs: more.closeGraceMs, log: silent })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { inboundUpgradeTimeout: more.inboundUpgradeTimeout }
    })
    nodes.push(node)
    return { node, port: Number(getNetConfig(node.getMultiaddrs()[0]!).port) }
  }

  it('closes a socket that does not become a WebSocket in time, silent or halfway through its request', async () => {
    const { port } = await wsServer(400)
    const quiet = await rawSocket(port)
    const halfway = await rawSocket(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    sockets.push(quiet.socket, halfway.socket)
    for (const { closed } of [quiet, halfway]) {
      const ms = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5_000))])
      expect(ms).toBeGreaterThanOrEqual(300)
    }
  })

  it('closes at the deadline a socket that sends its request one byte at a time', async () => {
    const { port } = await wsServer(400)
    const slow = await rawSocket(port, 'G')
    sockets.push(slow.socket)
    const drip = setInterval(() => slow.socket.write('E'), 100)
    try {
      const ms = await Promise.race([slow.closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3_000))])
      expect(ms).toBeGreaterThanOrEqual(300)
    } finally {
      clearInterval(drip)
    }
  })

  it('survives a WebSocket frame the ws library refuses (it crashed the process with an unhandled error)', async () => {
    const { node, port } = await wsServer(10_000)
    const key = Buffer.from('0123456789abcdef').toString('base64')
    const socket = (await rawSocket(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`))
    sockets.push(socket.socket)
    await new Promise<void>((resolve) => socket.socket.once('data', () => resolve()))
    // An unmasked binary frame: a client's frames must be masked.
    socket.socket.write(Buffer.from([0x82, 0x00]))
    expect(await closesWithin(socket.closed, 3_000)).toBe(true)
    expect(node.status).toBe('started')
  })

  /** A raw socket that has become a WebSocket (the server's 101 read), and then sends nothing. */
  async function upgradedSocket(port: number): Promise<RawSocket> {
    const key = Buffer.from('0123456789abcdef').toString('base64')
    const socket = await rawSocket(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    sockets.push(socket.socket)
    await new Promise<void>((resolve) => socket.socket.once('data', () => resolve()))
    return socket
  }

  it('destroys a WebSocket that never answers the close, a grace after libp2p closes it', async () => {
    // libp2p closes a connection whose handshake has not finished within its upgrade timeout; `ws` then waited
    // 30 s for the peer's close frame.
    const { port } = await wsServer(10_000, 0, { closeGraceMs: 300, inboundUpgradeTimeout: 300 })
    const silentPeer = await upgradedSocket(port)
    expect(await closesWithin(silentPeer.closed, 5_000)).toBe(true)
    expect(await silentPeer.closed).toBeGreaterThanOrEqual(500)
  })

  it('destroys a WebSocket at once when libp2p resets its connection', async () => {
    // libp2p resets with close code 1006, which `ws` refuses to send: the socket stayed open.
    const { node: server } = await wsServer(10_000, 0, { closeGraceMs: 60_000 })
    const client = await createLibp2p({ transports: [webSockets()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(client)
    const connection = await client.dial(server.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })
    const closed = new Promise<void>((resolve) => client.addEventListener('connection:close', () => resolve(), { once: true }))
    // The server's side of the connection opens a little after the client's.
    while (server.getConnections().length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    for (const c of server.getConnections()) c.abort(new Error('cut off'))
    expect(await Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 3_000))])).toBe(true)
    expect(connection.status).not.toBe('open')
  })

  it('closes a WebSocket it dialled when libp2p resets the connection', async () => {
    // libp2p resets with close code 1006, which a dialled (WHATWG) WebSocket refuses to send: the close threw and
    // the socket stayed open until the server closed it. The server here is unguarded, so only the dialler's
    // close can end it.
    const server = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    nodes.push(server)
    const client = await createLibp2p({
      transports: [guardedWebSockets({ maxSocketsPerHost: 0, log: silent })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    nodes.push(client)
    const connection = await client.dial(server.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })
    while (server.getConnections().length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    const closed = new Promise<void>((resolve) => server.addEventListener('connection:close', () => resolve(), { once: true }))
    connection.abort(new Error('cut off'))
    expect(await Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 3_000))])).toBe(true)
    expect(server.getConnections()).toEqual([])
  })

  it('leaves an upgraded connection alone past the deadline', async () => {
    const { node: server } = await wsServer(300)
    const client = await createLibp2p({ transports: [webSockets()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(client)
    const connection = await client.dial(server.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    expect(connection.status).toBe('open')
    expect(server.getConnections().map((c) => c.status)).toEqual(['open'])
  })

  it('lets one address hold at most the limit of sockets before their upgrade, and more once one closes', async () => {
    const { port } = await wsServer(10_000, 2)
    const first = await rawSocket(port)
    const second = await rawSocket(port)
    const third = await rawSocket(port)
    sockets.push(first.socket, second.socket, third.socket)
    expect(await closesWithin(third.closed, 2_000)).toBe(true)
    expect(await closesWithin(first.closed, 100)).toBe(false)
    first.socket.destroy()
    await first.closed
    await new Promise((resolve) => setTimeout(resolve, 100))
    const fourth = await rawSocket(port)
    sockets.push(fourth.socket)
    expect(await closesWithin(fourth.closed, 500)).toBe(false)
    expect(await closesWithin(second.closed, 10)).toBe(false)
  })

  it('is what createDsfgNode listens on WebSockets with, its per-host limit included', async () => {
    const node = await createDsfgNode({
      store: new MemoryStore(),
      listen: ['/ip4/127.0.0.1/tcp/0/ws'],
      connectionLimits: { maxConnectionsPerHost: 1 }
    })
    nodes.push(node)
    const port = Number(getNetConfig(node.getMultiaddrs()[0]!).port)
    const first = await rawSocket(port)
    const second = await rawSocket(port)
    sockets.push(first.socket, second.socket)
    expect(await closesWithin(second.closed, 2_000)).toBe(true)
    expect(await closesWithin(first.closed, 100)).toBe(false)
  })
})
