import type { Logger, MultiaddrConnection } from '@libp2p/interface'
import { getNetConfig, isNetworkAddress } from '@libp2p/utils'

/**
 * The inbound connections of each remote IP address, counted from the moment libp2p accepts the socket (before
 * the noise handshake) until the socket closes, whether the upgrade succeeded or not. A connection past `max`
 * from one address is refused at once. Peer ids cost nothing to make, so the per-peer limits alone let one
 * machine take a server's whole reply budget with a hundred of them; this bounds what one address can hold.
 * (Prysm keeps a colocation limit of peers per IP for the same reason.) Clients behind one NAT share it.
 */
export class HostConnectionLimit {
  private readonly open = new Map<string, number>()

  constructor(
    private readonly max: number,
    private readonly log?: Logger
  ) {}

  /** For `connectionGater.denyInboundConnection`: true refuses `maConn`; an accepted one is counted until it closes. */
  deny(maConn: MultiaddrConnection): boolean {
    if (!isNetworkAddress(maConn.remoteAddr) || maConn.status !== 'open') return false
    const host = getNetConfig(maConn.remoteAddr).host
    const count = this.open.get(host) ?? 0
    if (count >= this.max) {
      this.log?.('refused a connection from %s: it holds %d already (maxConnectionsPerHost)', host, count)
      return true
    }
    this.open.set(host, count + 1)
    maConn.addEventListener('close', () => this.release(host), { once: true })
    return false
  }

  /** Inbound connections open or being upgraded from `host` (an IP address as libp2p writes it). */
  connectionsFrom(host: string): number {
    return this.open.get(host) ?? 0
  }

  private release(host: string): void {
    const count = (this.open.get(host) ?? 1) - 1
    if (count <= 0) this.open.delete(host)
    else this.open.set(host, count)
  }
}
