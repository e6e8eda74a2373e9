import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Prng } from '../../src/util/prng.js'
import { Link, type LinkOptions, linkTo, symmetricLink } from '../helpers/link-emulator.js'

/** A TCP server on 127.0.0.1 handing each accepted socket to `onSocket`; `close` destroys those sockets too. */
async function target(onSocket: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const accepted = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.add(socket)
    // Resets are part of the tests; the assertions are on the dialler's side.
    socket.on('error', () => {})
    onSocket(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const socket of accepted) socket.destroy()
    await closed
  }
  return { port: (server.address() as { port: number }).port, close }
}

/** Everything `socket` sends until its end; its write side stays open (`for await` would destroy the socket). */
function readAll(socket: Socket): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve(new Uint8Array(Buffer.concat(chunks))))
    socket.once('error', reject)
  })
}

/** Whether `socket` closed on an error (a reset), without `once`'s rejection on the error itself. */
function closed(socket: Socket): Promise<boolean> {
  socket.on('error', () => {})
  return new Promise((resolve) => socket.once('close', resolve))
}

function dial(port: number): Socket {
  return connect({ host: '127.0.0.1', port, allowHalfOpen: true })
}

/** Writes `chunks` to `socket` in order, waiting for drains, then ends it. */
async function writeAll(socket: Socket, chunks: Uint8Array[]): Promise<void> {
  for (const chunk of chunks) if (!socket.write(chunk)) await once(socket, 'drain')
  socket.end()
}

describe('link emulator', () => {
  const cleanup: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  async function open(port: number, options: LinkOptions): Promise<Link> {
    const link = await Link.open({ host: '127.0.0.1', port }, options)
    cleanup.push(() => link.close())
    return link
  }

  async function echoTarget(): Promise<number> {
    const { close, port } = await target((socket) => socket.pipe(socket))
    cleanup.push(close)
    return port
  }

  it('delivers every byte in order both ways, under backpressure, with half-close passed on', async () => {
    // The target reads the whole request up to its end, then answers with it reversed and ends.
    const { close, port } = await target(async (socket) => {
      const request = await readAll(socket)
      await writeAll(socket, [request.slice().reverse()])
    })
    cleanup.push(close)
    // A small queue bound so the lanes pause and resume their sources many times over.
    const link = await open(port, { ...symmetricLink(4, 400), maxQueuedBytes: 32 * 1024 })
    const prng = new Prng(7)
    const chunks = Array.from({ length: 300 }, () => prng.bytes(1 + prng.int(20_000)))
    const sent = new Uint8Array(Buffer.concat(chunks))
    const socket = dial(link.port)
    const [, reply] = await Promise.all([writeAll(socket, chunks), readAll(socket)])
    expect(reply.length).toBe(sent.length)
    expect(Buffer.from(reply).equals(Buffer.from(sent.slice().reverse()))).toBe(true)
    expect(link.carried()).toEqual({ up: sent.length, down: sent.length })
  })

  it('keeps the order of chunks from several connections sharing a link', async () => {
    const port = await echoTarget()
    const link = await open(port, { up: { delayMs: 2, bytesPerSecond: 20e6 }, down: { delayMs: 2 } })
    const prng = new Prng(11)
    const runs = await Promise.all(
      [1, 2, 3].map(async () => {
        const chunks = Array.from({ length: 50 }, () => prng.bytes(1 + prng.int(5000)))
        const socket = dial(link.port)
        const [, echoed] = await Promise.all([writeAll(socket, chunks), readAll(socket)])
        return { sent: new Uint8Array(Buffer.concat(chunks)), echoed }
      })
    )
    for (const { sent, echoed } of runs) expect(Buffer.from(echoed).equals(Buffer.from(sent))).toBe(true)
  })

  it('adds its one-way delay in each direction', async () => {
    const port = await echoTarget()
    const link = await open(port, { up: { delayMs: 100 }, down: { delayMs: 50 } })
    const socket = dial(link.port)
    await once(socket, 'connect')
    const started = performance.now()
    socket.write(Uint8Array.of(1))
    await once(socket, 'data')
    // A lower bound only: a loaded machine may take longer, never shorter.
    expect(performance.now() - started).toBeGreaterThanOrEqual(145)
    socket.destroy()
  })

  it('caps the rate of each direction', async () => {
    const bytes = 200_000
    const { close, port } = await target((socket) => void writeAll(socket, [new Uint8Array(bytes)]))
    cleanup.push(close)
    const link = await open(port, { up: { delayMs: 0 }, down: { delayMs: 0, bytesPerSecond: 1e6 } })
    const socket = dial(link.port)
    socket.end()
    const started = performance.now()
    const received = await readAll(socket)
    expect(received.length).toBe(bytes)
    // 200 kB at 1 MB/s: at least 200 ms (less a little for the first segment leaving before `started`).
    expect(performance.now() - started).toBeGreaterThanOrEqual(190)
  })

  it('stops reading from a sender whose receiver does not read, so its memory stays bounded', async () => {
    const { close, port } = await target((socket) => socket.pause())
    cleanup.push(close)
    const link = await open(port, { ...symmetricLink(2), maxQueuedBytes: 64 * 1024 })
    const socket = dial(link.port)
    socket.on('error', () => {})
    cleanup.push(() => void socket.destroy())
    await once(socket, 'connect')
    // Write until the sender's own buffer backs up and stays backed up for a while, or 64 MiB went out.
    const chunk = new Uint8Array(64 * 1024)
    const limit = 64 * 1024 * 1024
    let written = 0
    while (written < limit) {
      written += chunk.length
      if (socket.write(chunk)) continue
      const drained = await Promise.race([once(socket, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 300))])
      if (!drained) break
    }
    // Without backpressure the proxy would take it all; with it, only the kernel's socket buffers (a few MiB
    // each on loopback) and the lane's 64 KiB hold what went out.
    expect(written).toBeLessThan(limit / 2)
  })

  it('passes a reset on, and close() resets every connection and stops listening', async () => {
    let accepted: Socket | undefined
    const { close, port } = await target((socket) => {
      accepted = socket
    })
    cleanup.push(close)
    const { link, addr } = await linkTo(`/ip4/127.0.0.1/tcp/${port}/p2p/peer`, symmetricLink(10))
    cleanup.push(() => link.close())
    expect(addr).toBe(`/ip4/127.0.0.1/tcp/${link.port}/p2p/peer`)

    const reset = dial(link.port)
    const resetClosed = closed(reset)
    await once(reset, 'connect')
    await expect.poll(() => accepted).toBeDefined()
    accepted!.resetAndDestroy()
    expect(await resetClosed).toBe(true)

    accepted = undefined
    const kept = dial(link.port)
    const keptClosed = closed(kept)
    await once(kept, 'connect')
    await expect.poll(() => accepted).toBeDefined()
    const targetClosed = closed(accepted!)
    await link.close()
    expect(await keptClosed).toBe(true)
    expect(await targetClosed).toBe(true)
    const refused = dial(link.port)
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')
  })
})
