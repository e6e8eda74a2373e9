/**
 * The link scenarios of issue 13 ("Sync over real links"), shared by the short correctness runs in
 * `test/net/links.e2e.test.ts` and the measurements of `bench/links.ts`: one `LinkOptions` per server.
 */
import { type LinkOptions, symmetricLink } from './link-emulator.js'

export interface LinkScenario {
  /** A short name for logs and result rows. */
  readonly name: string
  /** The link to each server, in dial order. */
  readonly links: readonly LinkOptions[]
}

/** A well-connected peer: 80 ms round trip, 8 Mbit/s each way. */
export const FAST_LINK = symmetricLink(80, 8)
/** A distant, thin peer: 300 ms round trip, 2 Mbit/s each way. */
export const SLOW_LINK = symmetricLink(300, 2)

/** Whether slow peers hold back a fast one: judged against the fast link alone. */
export const ONE_FAST_THREE_SLOW: LinkScenario = { name: '1 fast + 3 slow', links: [FAST_LINK, SLOW_LINK, SLOW_LINK, SLOW_LINK] }

/** A peer that crawls just above the transfer floor (32 KiB/s): 80 ms round trip, 40 KB/s each way. */
export const CRAWLING_LINK: LinkOptions = { up: { delayMs: 40, bytesPerSecond: 40_000 }, down: { delayMs: 40, bytesPerSecond: 40_000 } }

/**
 * Whether a crawler holds back a fast peer when it is the first peer a joiner reaches (so the first it asks):
 * judged against the fast link alone.
 */
export const CRAWLER_FIRST: LinkScenario = { name: '1 crawler first + 1 fast', links: [CRAWLING_LINK, FAST_LINK] }

export const LINK_SCENARIOS: readonly LinkScenario[] = [
  { name: '4 peers, 80 ms, 8 Mbit/s', links: [FAST_LINK, FAST_LINK, FAST_LINK, FAST_LINK] },
  { name: '4 peers, 80 ms, no cap', links: Array.from({ length: 4 }, () => symmetricLink(80)) },
  { name: '1 peer, 300 ms, 2 Mbit/s', links: [SLOW_LINK] },
  ONE_FAST_THREE_SLOW,
  CRAWLER_FIRST
]
