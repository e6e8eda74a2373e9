import type { IncomingMessage } from 'node:http'
import { Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger, Transport } from '@libp2p/interface'
import { type WebSocketsComponents, webSockets } from '@libp2p/websockets'
import { WS_CLOSE_GRACE_MS, WS_UPGRADE_TIMEOUT_MS } from '../constants.js'
import { HostConnectionLimit } from './host-limit.js'
import { ABNORMAL_CLOSURE, closeDialledResets } from './ws-reset.js'

type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  done: (ws: UpgradedWebSocket, req: IncomingMessage) => void
) => void

/** What the guard uses of a `ws` WebSocket. */
interface UpgradedWebSocket {
  on(event: 'error', listener: (err: Error) => void): unknown
  close(...args: unknown[]): void
  terminate(): void
}

export interface GuardedWebSocketsInit {
  /** Sockets one IP address may hold open on a WebSocket listener (upgraded or not); 0 for no limit. */
  maxSocketsPerHost: number
  /** How long a socket may take to become a WebSocket. @default WS_UPGRADE_TIMEOUT_MS */
  upgradeTimeoutMs?: number
  /** How long a WebSocket being closed may wait for its peer's close frame. @default WS_CLOSE_GRACE_MS */
  closeGraceMs?: number
  log: () => Logger
}

/**
 * `@libp2p/websockets` with the bounds its listener lacks. It takes each TCP socket itself and hands it to an
 * HTTP server that never listens, so Node's header and request timeouts never run: a socket that never finishes
 * its HTTP upgrade request stayed open for good (an outside tester held 500 from one address). And libp2p's
 * connection gater sees a WebSocket only once upgraded. Here each socket of the listener must become a WebSocket
 * within `upgradeTimeoutMs` of its accept, one address may hold at most `maxSocketsPerHost` sockets open, each
 * WebSocket gets an 'error' listener, one that is closed is destroyed `closeGraceMs` later if its peer has not
 * answered the close by then, and one that is reset is destroyed at once (and one it dialled is closed:
 * `closeDialledResets`). This reaches into the listener's
 * `server` and `wsServer` fields: if a release of `@libp2p/websockets` drops them, the listener runs unguarded
 * and says so in the log (`test/net/ws-guard.e2e.test.ts` fails).
 */
export function guardedWebSockets(init: GuardedWebSocketsInit): (components: WebSocketsComponents) => Transport {
  const transport = webSockets()
  const timeoutMs = init.upgradeTimeoutMs ?? WS_UPGRADE_TIMEOUT_MS
  const closeGraceMs = init.closeGraceMs ?? WS_CLOSE_GRACE_MS
  return (components) => {
    const inner = closeDialledResets(transport(components))
    // One count over all of the transport's listeners, made with the first (the node's logger exists by then).
    let perHost: HostConnectionLimit | undefined
    const createListener = inner.createListener.bind(inner)
    inner.createListener = (options) => {
      const listener = createListener(options)
      if (init.maxSocketsPerHost > 0) perHost ??= new HostConnectionLimit(init.maxSocketsPerHost, init.log())
      const server = (listener as unknown as { server?: unknown }).server
      if (!(server instanceof Server)) {
        init.log()('@libp2p/websockets has no `server` field any more: its sockets are not bounded')
        return listener
      }
      // An absolute deadline, not `socket.setTimeout`: that restarts on every byte (one header byte every few
      // seconds kept a socket for good) and Node's HTTP server clears it on a keep-alive request.
      const deadlines = new WeakMap<object, ReturnType<typeof setTimeout>>()
      server.on('connection', (socket: Socket) => {
        // Destroyed with an error, not without: the listener waits for the socket's first byte on a promise that
        // only an 'error' settles.
        if (perHost?.denySocket(socket) === true) {
          socket.destroy(new Error('too many sockets from one address'))
          return
        }
        const deadline = setTimeout(() => socket.destroy(new Error(`no WebSocket upgrade within ${timeoutMs} ms`)), timeoutMs)
        deadlines.set(socket, deadline)
        socket.once('close', () => clearTimeout(deadline))
      })
      // At the upgrade: the deadline ends, and the WebSocket gets an 'error' listener, which the listener never
      // adds: one frame the `ws` library refuses (an unmasked one) crashed the process with an unhandled 'error'.
      const wsServer = (listener as unknown as { wsServer?: { handleUpgrade?: unknown } }).wsServer
      if (wsServer !== undefined && typeof wsServer.handleUpgrade === 'function') {
        const handleUpgrade = wsServer.handleUpgrade.bind(wsServer) as UpgradeHandler
        wsServer.handleUpgrade = ((req, socket, head, done) =>
          handleUpgrade(req, socket, head, (ws, request) => {
            // Over TLS the socket here wraps the one accepted (`_parent`).
            for (const s of [socket, (socket as { _parent?: object })._parent]) {
              if (s !== undefined) clearTimeout(deadlines.get(s))
            }
            ws.on('error', (err: Error) => {
              init.log()('WebSocket from %s failed: %s', request.socket.remoteAddress, err.message)
              ws.terminate()
            })
            // `ws` waits 30 s for the peer's close frame: a peer that never sends one kept its socket that long.
            // libp2p resets a connection with code 1006, which `ws` refuses to send: the close threw, libp2p logged
            // it, and the socket stayed open until its peer closed it. A reset now ends the socket at once.
            const close = ws.close.bind(ws)
            ws.close = (...args: unknown[]) => {
              if (args[0] === ABNORMAL_CLOSURE) {
                ws.terminate()
                return
              }
              setTimeout(() => ws.terminate(), closeGraceMs).unref() // a WebSocket already closed ignores it
              close(...args)
            }
            done(ws, request)
          })) satisfies UpgradeHandler
      } else {
        init.log()('@libp2p/websockets has no `wsServer.handleUpgrade` any more: its WebSockets have no error listener')
      }
      return listener
    }
    return inner
  }
}
