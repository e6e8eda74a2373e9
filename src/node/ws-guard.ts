import { Server, type Socket } from 'node:net'
import type { Logger, Transport } from '@libp2p/interface'
import { type WebSocketsComponents, webSockets } from '@libp2p/websockets'
import { WS_UPGRADE_TIMEOUT_MS } from '../constants.js'
import { HostConnectionLimit } from './host-limit.js'

export interface GuardedWebSocketsInit {
  /** Sockets one IP address may hold on a WebSocket listener before their upgrade; 0 for no limit. */
  maxSocketsPerHost: number
  /** How long a socket may take to become a WebSocket. @default WS_UPGRADE_TIMEOUT_MS */
  upgradeTimeoutMs?: number
  log: () => Logger
}

/**
 * `@libp2p/websockets` with two bounds its listener lacks. It takes each TCP socket itself and hands it to an
 * HTTP server that never listens, so Node's header and request timeouts never run: a socket that never finishes
 * its HTTP upgrade request stayed open for good (an outside tester held 500 from one address). And libp2p's
 * connection gater sees a WebSocket only once upgraded. Here each socket of the listener must become a WebSocket
 * within `upgradeTimeoutMs` (the `ws` library clears the socket's timeout when it does), and one address may hold
 * at most `maxSocketsPerHost` of them meanwhile. Both reach into the listener's `server` field: if a release of
 * `@libp2p/websockets` drops it, the listener runs unguarded and says so in the log
 * (`test/net/ws-guard.e2e.test.ts` fails).
 */
export function guardedWebSockets(init: GuardedWebSocketsInit): (components: WebSocketsComponents) => Transport {
  const transport = webSockets()
  const timeoutMs = init.upgradeTimeoutMs ?? WS_UPGRADE_TIMEOUT_MS
  return (components) => {
    const inner = transport(components)
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
      server.on('connection', (socket: Socket) => {
        // Destroyed with an error, not without: the listener waits for the socket's first byte on a promise that
        // only an 'error' settles.
        if (perHost?.denySocket(socket) === true) {
          socket.destroy(new Error('too many sockets from one address'))
          return
        }
        socket.setTimeout(timeoutMs)
        socket.once('timeout', () => socket.destroy(new Error(`no WebSocket upgrade within ${timeoutMs} ms`)))
      })
      return listener
    }
    return inner
  }
}
