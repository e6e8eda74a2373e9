import type { Transport } from '@libp2p/interface'

/** The close code `@libp2p/websockets` resets a connection with (one no endpoint may send). */
export const ABNORMAL_CLOSURE = 1006

/** The close code a dialled WebSocket is closed with instead: in the range kept for applications. */
const RESET_CLOSURE = 4006

/** What the patch uses of a WebSocket (the WHATWG one a dialer makes, in Node and in browsers). */
interface DialledWebSocket {
  close(code?: number, reason?: string): void
}

/**
 * Makes the WebSockets a `@libp2p/websockets` transport dials close when libp2p resets their connection. It
 * resets with close code 1006, which a WHATWG WebSocket (Node's and every browser's) refuses to send: the close
 * threw, libp2p logged it, and the socket stayed open until the server closed it. They are closed with 4006
 * instead. This reaches into the transport's `_connect`: if a release of `@libp2p/websockets` drops it, dialled
 * WebSockets are left as they were (`test/net/ws-guard.e2e.test.ts` fails).
 */
export function closeDialledResets(transport: Transport): Transport {
  const dialer = transport as unknown as { _connect?: (...args: unknown[]) => Promise<DialledWebSocket> }
  const connect = dialer._connect
  if (typeof connect !== 'function') return transport
  dialer._connect = async (...args: unknown[]) => {
    const websocket = await connect.apply(transport, args)
    const close = websocket.close.bind(websocket)
    websocket.close = (code?: number, reason?: string) => close(code === ABNORMAL_CLOSURE ? RESET_CLOSURE : code, reason)
    return websocket
  }
  return transport
}
