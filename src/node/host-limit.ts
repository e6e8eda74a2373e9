import type { Socket } from 'node:net'
import type { Logger, MultiaddrConnection } from '@libp2p/interface'
import { getNetConfig, isNetworkAddress } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'

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
    const host = addressHost(maConn.remoteAddr)
    if (host === undefined || maConn.status !== 'open') return false
    if (!this.admit(host)) return true
    maConn.addEventListener('close', () => this.release(host), { once: true })
    return false
  }

  /** The same for a raw socket (a WebSocket listener's, before its upgrade): true refuses it; else counted until its 'close'. */
  denySocket(socket: Socket): boolean {
    if (socket.remoteAddress === undefined || socket.destroyed) return false
    const host = hostKey(socket.remoteAddress)
    if (!this.admit(host)) return true
    socket.once('close', () => this.release(host))
    return false
  }

  private admit(host: string): boolean {
    const count = this.open.get(host) ?? 0
    if (count >= this.max) {
      this.log?.('refused a connection from %s: it holds %d already (maxConnectionsPerHost)', host, count)
      return false
    }
    this.open.set(host, count + 1)
    return true
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

/** `hostKey` of a connection's remote address, or `undefined` for one that is not an IP address (a relay, memory). */
export function addressHost(addr: Multiaddr | undefined): string | undefined {
  if (addr === undefined || !isNetworkAddress(addr)) return undefined
  return hostKey(getNetConfig(addr).host)
}

/**
 * What the limit counts connections by: an IPv4 address as it is; an IPv6 address as its /64 (its first four
 * groups, then `::/64`), except one that carries an IPv4 address, which counts as that IPv4 address: in its
 * last 32 bits (IPv4-mapped `::ffff:0:0/96`, the NAT64 prefix `64:ff9b::/96`), after `2002:` (6to4, where one
 * IPv4 host holds a /48: 65,536 /64s), or inverted in its last 32 bits (Teredo, `2001:0::/32`, where the /64
 * is the Teredo server's, shared by all its clients). Anything unparsable counts as itself.
 */
export function hostKey(host: string): string {
  if (!host.includes(':')) return host
  const groups = ipv6Groups(host.split('%')[0]!.toLowerCase())
  if (groups === null) return host
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)
  if (mapped || nat64) return ipv4(groups[6]!, groups[7]!)
  if (groups[0] === 0x2002) return ipv4(groups[1]!, groups[2]!)
  if (groups[0] === 0x2001 && groups[1] === 0) return ipv4(groups[6]! ^ 0xffff, groups[7]! ^ 0xffff)
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`
}

/** The IPv4 address of two 16-bit groups, dotted. */
function ipv4(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail allowed), or null if it is not one. */
function ipv6Groups(address: string): number[] | null {
  let text = address
  const dotted = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    if ([a, b, c, d].some((n) => n > 255)) return null
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const parts = text.split('::')
  if (parts.length > 2) return null
  const [head = '', tail] = parts
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? 0 : 8 - left.length - right.length
  if (fill < 0 || (tail === undefined && left.length !== 8)) return null
  const groups = [...left, ...new Array<string>(fill).fill('0'), ...right]
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null
  return groups.map((g) => Number.parseInt(g, 16))
}
