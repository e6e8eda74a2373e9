import type { MultiaddrConnection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { HostConnectionLimit, hostKey } from '../../src/node/host-limit.js'

/** Just what the limit reads of a socket libp2p accepted: its address, its status and its 'close' event. */
function socket(address: string, status: MultiaddrConnection['status'] = 'open') {
  const events = new EventTarget()
  const conn = {
    remoteAddr: multiaddr(address),
    status,
    addEventListener: events.addEventListener.bind(events)
  } as unknown as MultiaddrConnection
  return { conn, close: () => events.dispatchEvent(new Event('close')) }
}

describe('HostConnectionLimit', () => {
  it('refuses a connection past the limit from one address until one of its connections closes', () => {
    const limit = new HostConnectionLimit(2)
    const a = socket('/ip4/10.0.0.1/tcp/4001')
    const b = socket('/ip4/10.0.0.1/tcp/4002')
    expect(limit.deny(a.conn)).toBe(false)
    expect(limit.deny(b.conn)).toBe(false)
    expect(limit.deny(socket('/ip4/10.0.0.1/tcp/4003').conn)).toBe(true)
    // Another address has its own count.
    expect(limit.deny(socket('/ip4/10.0.0.2/tcp/4001').conn)).toBe(false)
    expect(limit.connectionsFrom('10.0.0.1')).toBe(2)
    a.close()
    expect(limit.connectionsFrom('10.0.0.1')).toBe(1)
    expect(limit.deny(socket('/ip4/10.0.0.1/tcp/4004').conn)).toBe(false)
    expect(limit.deny(socket('/ip4/10.0.0.1/tcp/4005').conn)).toBe(true)
  })

  it('counts a refused connection nothing, and a closed one once', () => {
    const limit = new HostConnectionLimit(1)
    const a = socket('/ip6/::1/tcp/4001')
    expect(limit.deny(a.conn)).toBe(false)
    const refused = socket('/ip6/::1/tcp/4002')
    expect(limit.deny(refused.conn)).toBe(true)
    refused.close()
    expect(limit.connectionsFrom(hostKey('::1'))).toBe(1)
    a.close()
    a.close()
    expect(limit.connectionsFrom(hostKey('::1'))).toBe(0)
    expect(limit.deny(socket('/ip6/::1/tcp/4003').conn)).toBe(false)
  })

  it('leaves alone sockets that are already closed or have no IP address', () => {
    const limit = new HostConnectionLimit(1)
    expect(limit.deny(socket('/ip4/10.0.0.1/tcp/1', 'closed').conn)).toBe(false)
    expect(limit.connectionsFrom('10.0.0.1')).toBe(0)
    expect(limit.deny(socket('/memory/a').conn)).toBe(false)
    expect(limit.deny(socket('/memory/b').conn)).toBe(false)
  })
})

describe('hostKey', () => {
  it('keeps an IPv4 address, and counts an IPv6 one as its /64', () => {
    expect(hostKey('10.0.0.1')).toBe('10.0.0.1')
    expect(hostKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(hostKey('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(hostKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(hostKey('::1')).toBe('0:0:0:0::/64')
    expect(hostKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(hostKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(hostKey('::ffff:c000:207')).toBe('192.0.2.7')
  })

  it('counts an IPv4 client behind a NAT64 translator as its IPv4 address, not as the translator\'s /64', () => {
    expect(hostKey('64:ff9b::1.2.3.4')).toBe('1.2.3.4')
    expect(hostKey('64:ff9b::506:708')).toBe('5.6.7.8')
  })

  it('counts a 6to4 address as the IPv4 host it embeds, whose /48 would give it 65,536 /64s', () => {
    expect(hostKey('2002:c000:204:1::1')).toBe('192.0.2.4')
    expect(hostKey('2002:c000:204:ffff:1:2:3:4')).toBe('192.0.2.4')
    expect(hostKey('2002:c000:205::1')).toBe('192.0.2.5')
  })

  it('counts a Teredo client as its own IPv4 address, not as its Teredo server\'s /64', () => {
    // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (stored inverted).
    expect(hostKey('2001:0000:4136:e378:8000:63bf:3fff:fdd2')).toBe('192.0.2.45')
    expect(hostKey('2001:0:4136:e378:8000:63bf:3fff:fdd3')).toBe('192.0.2.44')
    // Only 2001:0::/32 is Teredo: the rest of 2001::/16 counts by its /64.
    expect(hostKey('2001:1:4136:e378:8000:63bf:3fff:fdd2')).toBe('2001:1:4136:e378::/64')
  })

  it('counts what is not an address as itself', () => {
    expect(hostKey('1::2::3')).toBe('1::2::3')
    expect(hostKey('::ffff:300.1.1.1')).toBe('::ffff:300.1.1.1')
    expect(hostKey('1:2:3')).toBe('1:2:3')
  })

  it('lets one /64 hold no more than the limit whatever its addresses', () => {
    const limit = new HostConnectionLimit(2)
    expect(limit.deny(socket('/ip6/2001:db8:1:2::1/tcp/1').conn)).toBe(false)
    expect(limit.deny(socket('/ip6/2001:db8:1:2::2/tcp/1').conn)).toBe(false)
    expect(limit.deny(socket('/ip6/2001:db8:1:2:ffff::3/tcp/1').conn)).toBe(true)
    expect(limit.deny(socket('/ip6/2001:db8:1:3::1/tcp/1').conn)).toBe(false)
  })
})
