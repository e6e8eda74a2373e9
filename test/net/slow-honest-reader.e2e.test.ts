/**
 * The server's side of issue 13's thin links: a reply that takes the link several times the write deadline, read
 * by a client that keeps reading, is written out whole. (A reader that never reads is still cut at the deadline:
 * `slow-reader.e2e.test.ts`.)
 */
import { multiaddr } from '@multiformats/multiaddr'
import { describe, it } from 'vitest'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { Status } from '../../src/net/codec.js'
import { requestFrame } from '../../src/net/rpc.js'
import { CONTENTS_PROTOCOL, decodeContentsResponse, encodeContentsRequest } from '../../src/net/topic-protocols.js'
import { penaltyOf } from '../helpers/blame.js'
import { createDsfgNode } from '../helpers/libp2p.js'
import { linkTo } from '../helpers/link-emulator.js'
import { budgetedServer } from './half-open-attack.js'

const TOPIC = 'big'
const ITEMS = 128
/**
 * 128 items of 16 KiB, of which a reply carries 2 MiB: 7 s at 300 kB/s against a 2.5 s write deadline. (The
 * deadline must exceed well the time the link takes for one yamux window, 256 KiB, which the server sends at
 * once and only its reading lets it send more: 0.9 s here. With the defaults, 10 s against 8 s for a window at
 * the 32 KiB/s floor.)
 */
const ITEM_BYTES = 16 * 1024
const DEADLINE_MS = 2_500
const THIN = { up: { delayMs: 25, bytesPerSecond: 300_000 }, down: { delayMs: 25, bytesPerSecond: 300_000 } }

describe('a reply longer than the write deadline on a thin link', () => {
  it('reaches a client that keeps reading, and nobody is blamed', { timeout: 20_000 }, async ({ expect, onTestFinished }) => {
    const server = await budgetedServer({
      topic: TOPIC,
      count: ITEMS,
      itemBytes: ITEM_BYTES,
      seed: 5,
      deadlineMs: DEADLINE_MS,
      budget: 32 * 1024 * 1024,
      perPeer: 8 * 1024 * 1024
    })
    onTestFinished(() => server.stop())
    const through = await linkTo(server.getMultiaddrs()[0]!.toString(), THIN)
    onTestFinished(() => through.link.close())
    // A DSFG node: its yamux windows stay small enough for the server to see the reply's progress.
    const client = await createDsfgNode()
    onTestFinished(() => client.stop())
    await client.dial(multiaddr(through.addr))

    const started = performance.now()
    const reply = await requestFrame(
      (peer, protocol, options) => client.dialProtocol(peer, protocol, options),
      server.peerId,
      CONTENTS_PROTOCOL,
      encodeContentsRequest(TOPIC, 0, ITEMS),
      { timeoutMs: 15_000, maxResponseBytes: MAX_FRAME_BYTES }
    )
    const seconds = (performance.now() - started) / 1000
    const { code, items } = decodeContentsResponse(reply, 0, ITEMS)
    expect(code).toBe(Status.OK)
    expect(items.length).toBeGreaterThan(100)
    // It did take the link several deadlines.
    expect(seconds).toBeGreaterThan((2 * DEADLINE_MS) / 1000)
    expect(await penaltyOf(server, client.peerId)).toBe(0)
  })
})
