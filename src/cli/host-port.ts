import { isIP } from 'node:net'
import { UsageError } from '../errors.js'

/** A `HOST:PORT` flag (`--ws`, `--web`, `--metrics`): an IP address to listen on and a port (0 picks a free one). */
export interface HostPort {
  host: string
  port: number
}

/** Parses `HOST:PORT` (`[::1]:PORT` for IPv6); a usage error names the flag. */
export function hostPortFlag(value: string, name: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value)
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  if (host === undefined || isIP(host) === 0 || !Number.isInteger(port) || port > 65535) {
    throw new UsageError(`${name} ${JSON.stringify(value)} is not HOST:PORT with HOST an IP address`)
  }
  return { host, port }
}

/** The WebSockets listen multiaddr of a `--ws HOST:PORT`. */
export function wsListenAddress({ host, port }: HostPort): string {
  return `/ip${isIP(host)}/${host}/tcp/${port}/ws`
}
