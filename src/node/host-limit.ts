import type { Logger, MultiaddrConnection } from '@libp2p/interface'
import { getNetConfig, isNetworkAddress } from '@libp2p/utils'

/**
 * The inbound connections of each remote IP address, counted from the moment libp2p accepts the socket (before
 * the noise handshake) until the socket closes, whether the upgrade succeeded or not. A connection past `max`
 * from one address is refused at once. Peer ids cost nothing to make, so the per-peer limits alone let one
 * machine take a server's whole reply budget with a hundred of them; this bounds what one address can hold.
 * (Prysm keeps a colocation limit of peers per IP for the same reason.) Clients behind one NAT share it. An
 * IPv6 address counts as its /64: one machine is commonly given a whole /64, so its single addresses are free.
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
    const host = hostKey(getNetConfig(maConn.remoteAddr).host)
    const count = this.open.get(host) ?? 0
    if (count >= this.max) {
      this.log?.('refused a connection from %s: it holds %d already (maxConnectionsPerHost)', host, count)
      return true
    }
    this.open.set(host, count + 1)
    maConn.addEventListener('close', () => this.release(host), { once: true })
    return false
  }

  /** Inbound connections open or being upgraded from `host` (an IPv4 address, or an IPv6 /64 as `hostKey` writes it). */
  connectionsFrom(host: string): number {
    return this.open.get(host) ?? 0
  }

  private release(host: string): void {
    const count = (this.open.get(host) ?? 1) - 1
    if (count <= 0) this.open.delete(host)
    else this.open.set(host, count)
  }
}

/**
 * What the limit counts connections by: an IPv4 address as it is (an IPv4-mapped IPv6 one as the IPv4 address),
 * an IPv6 address as its first four groups, written in full and followed by `::/64`.
 */
export function hostKey(host: string): string {
  if (!host.includes(':')) return host
  const address = host.split('%')[0]!.toLowerCase()
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  if (mapped !== null) return mapped[1]!
  const [head = '', tail] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`
}
