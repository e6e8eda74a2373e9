import { HistoryMismatchError, PeerBusyError } from '../errors.js'
import { HEDGE_AFTER_MIN_MS } from '../fsm/constants.js'
import { HedgeDelay } from '../fsm/hedge-delay.js'
import type { PeerInfo } from '../fsm/types.js'
import { equalBytes } from '../util/bytes.js'
import { type Clock, systemClock } from '../util/clock.js'
import { toHex } from '../util/hex.js'
import type { Log } from '../util/log.js'

/** The expected hash of one item and the peer that gave it (the one to blame if the item proves it wrong). */
export interface ExpectedHash {
  hash: Uint8Array
  peer: string
}

export interface ContentHashesInit {
  /** Peers that may be asked, with the ranges they claim. */
  peers(): PeerInfo[]
  /**
   * keccak256 of items `from..to` from one peer (a prefix of the range when it holds fewer). Must reject soon
   * after `signal` aborts: a quorum reached aborts the requests still out.
   */
  fetch(peer: string, from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]>
  /** Hashes asked for at once. */
  chunk: number
  /**
   * Distinct peers that must give the same hashes before they are believed (without a publisher, the quorum
   * mode's rule for content). Above 1, hashes are fetched per batch, not ahead. @default 1
   */
  quorum?: number
  /** Where a peer on another history is logged (the fetcher logs failed requests). */
  log?: Log
  /** For the hedge of a slow source. @default systemClock */
  clock?: Clock
}

/**
 * The content hashes a topic sync checks downloaded batches against: fetched a chunk at a time from one peer
 * that claims the range, rotating between such peers, and fetched ahead. While the batches of one chunk are
 * checked, the next chunk is already asked of the peer whose turn it is, so a batch never waits a round trip
 * for its hashes (it did every `chunk` items, a fifth of the delivery time of a loopback sync). Holds at most
 * two chunks.
 *
 * Each hash remembers its peer: after a mismatch the caller blames that peer only if the item it accepts in
 * the end proves the hash wrong. `clear()` forgets everything, including a fetch in flight, so the next check
 * asks the next peer in turn: one lying source cannot reject every honest copy.
 *
 * A source that has not answered within `HEDGE_AFTER_MEDIANS` times the median of the last fetches (at least
 * `HEDGE_AFTER_MIN_MS`) is not waited on alone: the next peer in turn is asked too, and the first full answer
 * wins. A liar answering validly 9 s late on each of its turns made a 20k-item sync 35-68 times slower.
 */
export class ContentHashes {
  private readonly init: ContentHashesInit
  private readonly hashes = new Map<number, ExpectedHash>()
  /** Highest number with a known hash, contiguous from the range being checked. */
  private through = -1
  private turn = 0
  /** Bumped by `clear()`: a fetch started before it is discarded when it lands. */
  private generation = 0
  /** The fetch of the next chunk in flight, if any, and the first number it asks for. */
  private ahead: { from: number; done: Promise<void> } | null = null

  private readonly quorum: number
  private readonly clock: Clock
  private refusal: PeerBusyError | undefined
  /** The wait before a slow source's fetch is asked of the next peer too. */
  private readonly hedgeDelay = new HedgeDelay()

  constructor(init: ContentHashesInit) {
    this.init = init
    this.clock = init.clock ?? systemClock
    this.quorum = Math.max(1, init.quorum ?? 1)
  }

  /** The expected hash of item `n`, if known. */
  get(n: number): ExpectedHash | undefined {
    return this.hashes.get(n)
  }

  /**
   * A peer's RATE_LIMITED answer during the last `ensure` that resolved false, if there was one: the hashes
   * are to be had shortly, not a local fault to wait out.
   */
  get refused(): PeerBusyError | undefined {
    return this.refusal
  }

  /** Hashes held (at most two chunks). */
  get size(): number {
    return this.hashes.size
  }

  /**
   * Makes sure the hashes of `from..to` are known, fetching up to `chunk` of them (not past `target`) from one
   * peer that claims the range when they are not, then starts fetching the next chunk. Resolves false when no
   * peer could give them now.
   *
   * `anchor` is the hash of our item `from - 1` (none for `from` 0). A source is asked for that item's hash too
   * and believed only when it is ours: hashes of a history that does not extend our own would append its items
   * to ours, leaving a history no peer holds (found with one honest peer and two agreeing liars). Each chunk
   * fetched ahead is anchored the same way on the last hash of the chunk before it.
   */
  async ensure(from: number, to: number, target: number, signal: AbortSignal, anchor?: Uint8Array): Promise<boolean> {
    this.refusal = undefined
    // A batch that starts in the chunk being fetched ahead waits for it rather than asking again.
    const ahead = this.ahead
    if (!this.has(from, to) && ahead !== null && (this.hashes.has(from) || from === ahead.from)) await ahead.done
    if (!this.has(from, to)) {
      this.clear()
      const fetched =
        this.quorum === 1 ? this.fetchFirst(from, to, target, signal, anchor) : this.fetchAgreed(from, to, signal, anchor)
      if (!(await fetched)) return false
    }
    if (this.quorum === 1) this.fetchAhead(to, target, signal)
    return true
  }

  /**
   * Asks every peer that claims `from..to` for its hashes at once and settles as soon as `quorum` of them gave
   * exactly the same ones (the requests still out are then aborted): a peer that disagrees is not believed,
   * a silent one holds nothing up while enough others answer, and without a quorum nothing is believed. The
   * hashes are attributed to the first peer that gave them.
   */
  private async fetchAgreed(from: number, to: number, signal: AbortSignal, anchor: Uint8Array | undefined): Promise<boolean> {
    const eligible = this.init.peers().filter((p) => p.lowest <= from && p.head >= to)
    if (eligible.length < this.quorum) return false
    const generation = this.generation
    const done = new AbortController()
    const asking = AbortSignal.any([signal, done.signal])
    const votes = new Map<string, { count: number; hashes: Uint8Array[]; peer: string }>()
    let agreed: { hashes: Uint8Array[]; peer: string } | undefined
    const ask = async (peer: string): Promise<void> => {
      let hashes: Uint8Array[]
      try {
        hashes = (await this.anchored(peer, from, to, anchor, asking)).slice(0, to - from + 1)
      } catch (err) {
        // A missing vote is all it means here.
        this.failed(peer, err)
        return
      }
      if (agreed !== undefined || hashes.length < to - from + 1) return
      const key = hashes.map((h) => toHex(h)).join('')
      const vote = votes.get(key) ?? { count: 0, hashes, peer }
      vote.count++
      votes.set(key, vote)
      if (vote.count < this.quorum) return
      agreed = vote
      done.abort()
    }
    const first = this.nextTurn()
    const asked = eligible.map((_p, i) => eligible[(first + i) % eligible.length]!.id)
    // Once a quorum agrees, the requests still out are aborted, and reject at once (the fetch contract).
    await Promise.all(asked.map(ask))
    if (agreed === undefined || generation !== this.generation || signal.aborted) return false
    this.add(from, agreed.hashes, agreed.peer)
    return true
  }

  /** Forgets the hashes of `from..to` (their items are stored). */
  forget(from: number, to: number): void {
    for (let n = from; n <= to; n++) this.hashes.delete(n)
  }

  /** Forgets every hash, and any fetch in flight. */
  clear(): void {
    this.hashes.clear()
    this.through = -1
    this.ahead = null
    this.generation++
  }

  private has(from: number, to: number): boolean {
    return this.hashes.has(from) && to <= this.through
  }

  /** Asks the peers in turn (hedged) for `from..` until one gives at least `from..to`. */
  private async fetchFirst(
    from: number,
    to: number,
    target: number,
    signal: AbortSignal,
    anchor: Uint8Array | undefined
  ): Promise<boolean> {
    const last = Math.max(to, Math.min(from + this.init.chunk - 1, target))
    const eligible = this.init.peers().filter((p) => p.lowest <= from && p.head >= to)
    const generation = this.generation
    const got = await this.fetchHedged(this.inTurn(eligible), from, to, last, anchor, signal)
    if (got === null || generation !== this.generation) return false
    this.add(from, got.hashes, got.peer)
    return true
  }

  /** `peers` from the one whose turn it is, round. */
  private inTurn(peers: PeerInfo[]): PeerInfo[] {
    if (peers.length === 0) return peers
    const first = this.nextTurn() % peers.length
    return [...peers.slice(first), ...peers.slice(0, first)]
  }

  /**
   * Asks `order[0]` for the hashes `from..last` (up to its head), and the next peer too when one fails, gives
   * fewer than `from..to`, or has not answered within the hedge delay; the first that gives at least `from..to`
   * wins and the requests still out are aborted. Null when none did, or `signal` aborted.
   */
  private fetchHedged(
    order: PeerInfo[],
    from: number,
    to: number,
    last: number,
    anchor: Uint8Array | undefined,
    signal: AbortSignal
  ): Promise<{ peer: string; hashes: Uint8Array[] } | null> {
    const done = new AbortController()
    const asking = AbortSignal.any([signal, done.signal])
    return new Promise((resolve) => {
      let next = 0
      let out = 0
      let settled = false
      let timer: unknown
      const finish = (result: { peer: string; hashes: Uint8Array[] } | null): void => {
        if (settled) return
        settled = true
        this.clock.clearTimeout(timer)
        done.abort()
        resolve(result)
      }
      const ask = (): void => {
        this.clock.clearTimeout(timer)
        if (settled) return
        if (signal.aborted || next >= order.length) {
          if (signal.aborted || out === 0) finish(null)
          return
        }
        const peer = order[next++]!
        const started = this.clock.now()
        out++
        this.anchored(peer.id, from, Math.min(last, peer.head), anchor, asking).then(
          (hashes) => {
            out--
            if (settled) return
            if (hashes.length < to - from + 1) {
              ask()
              return
            }
            this.hedgeDelay.add(this.clock.now() - started)
            finish({ peer: peer.id, hashes })
          },
          (err: unknown) => {
            out--
            if (settled) return
            this.failed(peer.id, err)
            ask()
          }
        )
        if (next < order.length) timer = this.clock.setTimeout(ask, this.hedgeDelay.ms ?? HEDGE_AFTER_MIN_MS)
      }
      ask()
    })
  }

  /**
   * Starts fetching the chunk after the hashes held, from the peer whose turn it is, once the range being
   * checked comes within half a chunk of their end. A failure only means the next check fetches them.
   */
  private fetchAhead(to: number, target: number, signal: AbortSignal): void {
    const from = this.through + 1
    if (this.ahead !== null || from > target || this.through - to > this.init.chunk / 2) return
    const eligible = this.init.peers().filter((p) => p.lowest <= from && p.head >= from)
    if (eligible.length === 0) return
    const generation = this.generation
    const anchor = this.hashes.get(from - 1)?.hash
    const last = Math.min(from + this.init.chunk - 1, target)
    const ahead = {
      from,
      done: this.fetchHedged(this.inTurn(eligible), from, from, last, anchor, signal)
        .then((got) => {
          if (got !== null && generation === this.generation && this.through + 1 === from) this.add(from, got.hashes, got.peer)
        })
        .finally(() => {
          if (this.ahead === ahead) this.ahead = null
        })
    }
    this.ahead = ahead
  }

  /**
   * The index of the peer whose turn it is. Each source gets two turns in a row: rotating at the queue's own
   * pace of batch peers, one liar among two peers could pair every honest batch with its own bad hashes and
   * every bad batch of its own with the honest hashes, for ever. Taking turns chunk by chunk also lets the
   * publisher's checkpoints catch a source whose hashes are wrong although no batch was rejected.
   */
  private nextTurn(): number {
    return Math.floor(this.turn++ / 2)
  }

  /**
   * `peer`'s hashes of `from..to`, asked from `from - 1` when `anchor` is given: they are returned only when
   * its hash of that item is `anchor` (its history extends ours there), and a rejection otherwise.
   */
  private async anchored(
    peer: string,
    from: number,
    to: number,
    anchor: Uint8Array | undefined,
    signal: AbortSignal
  ): Promise<Uint8Array[]> {
    if (anchor === undefined || from === 0) return this.init.fetch(peer, from, to, { signal })
    const hashes = await this.init.fetch(peer, from - 1, to, { signal })
    if (hashes.length === 0 || !equalBytes(hashes[0]!, anchor)) throw new HistoryMismatchError(peer, from - 1)
    return hashes.slice(1)
  }

  /** A peer's hashes did not come: the fetcher logged a failed request (dsfg:fetcher); a history mismatch is ours to log. */
  private failed(peer: string, err: unknown): void {
    if (err instanceof PeerBusyError) this.refusal = err
    if (err instanceof HistoryMismatchError) this.init.log?.('%s is on another history: %e', peer, err)
  }

  private add(from: number, hashes: readonly Uint8Array[], peer: string): void {
    for (let i = 0; i < hashes.length; i++) this.hashes.set(from + i, { hash: hashes[i]!, peer })
    if (hashes.length > 0) this.through = Math.max(this.through, from + hashes.length - 1)
  }
}


