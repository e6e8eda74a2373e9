import { connect, type Socket } from 'node:net'

/** A plain TCP connection to a listener on 127.0.0.1, for tests of what a server does with sockets that say little. */
export interface RawSocket {
  socket: Socket
  /** Settles when the socket closes, with the milliseconds since it connected. */
  closed: Promise<number>
}

/** Connects to `port` on 127.0.0.1 and sends `bytes` (if any), then nothing more; resolves once connected. */
export async function rawSocket(port: number, bytes?: string): Promise<RawSocket> {
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => undefined)
  const opened = Date.now()
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    // A server that closes a socket as soon as it accepts it (a limit) may reset it before the client sees
    // 'connect': that socket was connected, and is closed. Any other error (nothing listening) is one.
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve() : reject(err)))
  })
  if (bytes !== undefined) socket.write(bytes)
  return { socket, closed }
}

/** Whether `closed` settles within `ms`. */
export async function closesWithin(closed: Promise<number>, ms: number): Promise<boolean> {
  return Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])
}
