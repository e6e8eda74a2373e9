/**
 * Emulated network links on loopback, for the end-to-end tests and `bench/links.ts`: a link is a TCP proxy
 * on 127.0.0.1 in front of one target (a libp2p node's TCP listener), and a peer dialled through the proxy's
 * port sees every byte cross with a one-way delay and under a rate cap, each set per direction. Noise still
 * authenticates the target's peer id, whatever port it was dialled on.
 *
 * Each direction of a link is one FIFO lane shared by every connection through it (they share the link's
 * capacity, as connections over one path do): a chunk leaves at `max(arrival, previous departure) +
 * size / rate` and is delivered `delay` later, so departures, and deliveries, keep their arrival order.
 * Chunks are cut into segments of at most SEGMENT_BYTES so a large chunk does not arrive all at once after its
 * whole serialisation time (a real link delivers packet by packet).
 *
 * Not modelled: loss, jitter, and the round trip of TCP's handshake (the proxy accepts at once and connects
 * to the target at once; the first bytes then cross with the delay).
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

/** One direction of a link. */
export interface DirectionShape {
  /** Added to every byte's crossing, in milliseconds. */
  readonly delayMs: number
  /** The rate cap; omitted (or `Infinity`) for none. */
  readonly bytesPerSecond?: number
}

export interface LinkOptions {
  /** From the dialler to the target: requests. */
  readonly up: DirectionShape
  /** From the target back to the dialler: replies. */
  readonly down: DirectionShape
  /**
   * Bytes a direction may hold (in flight and waiting to leave, plus what its receiving socket has not yet
   * taken) before it stops reading from its senders; they resume below half of it. This is the emulated
   * path's window: an uncapped link carries at most this many bytes per one-way delay.
   * @default DEFAULT_MAX_QUEUED_BYTES
   */
  readonly maxQueuedBytes?: number
}

/**
 * 8 MiB: over an uncapped link with 40 ms one-way delay that allows 200 MB/s, above what the syncers move on
 * loopback, and near what Linux's largest autotuned TCP windows (4–6 MiB) allow on an 80 ms path.
 */
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024

/**
 * Largest piece a capped lane serialises at once: 4 KiB take 4 ms at 8 Mbit/s and 16 ms at 2 Mbit/s, so a
 * receiver sees data trickle in nearly as a packet-by-packet link delivers it, at a few hundred timer wake-ups
 * a second. Uncapped lanes keep chunks whole: serialisation takes no time there.
 */
const SEGMENT_BYTES = 4096

/** A link of `rttMs` round trip (half each way), capped at `mbitPerS` megabits a second in each direction (none if omitted). */
export function symmetricLink(rttMs: number, mbitPerS?: number): LinkOptions {
  const shape: DirectionShape = { delayMs: rttMs / 2, ...(mbitPerS === undefined ? {} : { bytesPerSecond: (mbitPerS * 1e6) / 8 }) }
  return { up: shape, down: shape }
}

/** Something a lane delivers to `sink` at `at` (a `performance.now()` time): bytes, or the end of its stream. */
interface Delivery {
  readonly sink: Socket
  readonly chunk: Uint8Array | null
  readonly at: number
}

/** One direction of a link: every chunk of every connection through it, in arrival order. */
class Lane {
  /** Delivered bytes, over the lane's life. */
  carried = 0
  private queue: Delivery[] = []
  private head = 0
  private queued = 0
  private lastDeparture = 0
  private timer: NodeJS.Timeout | undefined
  /** Sources paused because the lane is full, with the sink each one feeds. */
  private readonly paused = new Map<Socket, Socket>()
  private readonly msPerByte: number

  constructor(
    private readonly shape: DirectionShape,
    private readonly maxQueuedBytes: number
  ) {
    const rate = shape.bytesPerSecond ?? Number.POSITIVE_INFINITY
    if (!(rate > 0) || !(shape.delayMs >= 0)) throw new RangeError(`bad link direction ${JSON.stringify(shape)}`)
    this.msPerByte = 1000 / rate
  }

  /** Queues `chunk`, read from `source`, for `sink`; pauses `source` while the lane is full. */
  push(source: Socket, sink: Socket, chunk: Uint8Array): void {
    const step = this.msPerByte === 0 ? chunk.length : SEGMENT_BYTES
    for (let at = 0; at < chunk.length; at += step) {
      const segment = chunk.subarray(at, at + step)
      this.lastDeparture = Math.max(performance.now(), this.lastDeparture) + segment.length * this.msPerByte
      this.enqueue({ sink, chunk: segment, at: this.lastDeparture + this.shape.delayMs })
    }
    this.queued += chunk.length
    if (this.queued + sink.writableLength > this.maxQueuedBytes) {
      source.pause()
      this.paused.set(source, sink)
    }
  }

  /** Queues the end of `sink`'s stream behind everything queued before: a FIN takes no time to send, only to cross. */
  end(sink: Socket): void {
    this.enqueue({ sink, chunk: null, at: Math.max(performance.now(), this.lastDeparture) + this.shape.delayMs })
  }

  /** Forgets what is queued for `sink` (a reset: nothing more reaches it). */
  drop(sink: Socket): void {
    this.queue = this.queue.slice(this.head).filter((d) => d.sink !== sink)
    this.head = 0
    this.queued = this.queue.reduce((sum, d) => sum + (d.chunk?.length ?? 0), 0)
    this.resumeIfRoom()
  }

  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
    this.head = 0
    this.paused.clear()
  }

  /** A sink's buffer emptied: its paused sources may go on. */
  drained(): void {
    this.resumeIfRoom()
  }

  private enqueue(d: Delivery): void {
    this.queue.push(d)
    if (this.timer === undefined) this.schedule()
  }

  private schedule(): void {
    const next = this.queue[this.head]
    this.timer = next === undefined ? undefined : setTimeout(() => this.deliverDue(), Math.max(0, next.at - performance.now()))
  }

  private deliverDue(): void {
    const now = performance.now()
    const corked = new Set<Socket>()
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now) {
      const { sink, chunk } = this.queue[this.head++]!
      if (chunk !== null) this.queued -= chunk.length
      if (sink.destroyed) continue
      if (!corked.has(sink)) {
        sink.cork()
        corked.add(sink)
      }
      if (chunk === null) {
        sink.end()
      } else {
        this.carried += chunk.length
        sink.write(chunk)
      }
    }
    for (const sink of corked) sink.uncork()
    // Compact now and then rather than shift() per delivery: shift is linear in the queue's length.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    this.resumeIfRoom()
    this.schedule()
  }

  private resumeIfRoom(): void {
    for (const [source, sink] of this.paused) {
      if (!source.destroyed && this.queued + sink.writableLength > this.maxQueuedBytes / 2) continue
      this.paused.delete(source)
      source.resume()
    }
  }
}

/** One emulated link: a proxy on 127.0.0.1 forwarding every connection made to `port` to one target. */
export class Link {
  private readonly up: Lane
  private readonly down: Lane
  private readonly sockets = new Set<Socket>()

  private constructor(
    private readonly server: Server,
    readonly port: number,
    options: LinkOptions
  ) {
    const max = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
    this.up = new Lane(options.up, max)
    this.down = new Lane(options.down, max)
  }

  /** Listens on an ephemeral port of 127.0.0.1 and forwards to `target`. */
  static async open(target: { host: string; port: number }, options: LinkOptions): Promise<Link> {
    const server = createServer({ allowHalfOpen: true, noDelay: true })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('the link proxy has no TCP address')
    const link = new Link(server, address.port, options)
    server.on('connection', (dialler) => link.forward(dialler, target))
    return link
  }

  /** Bytes delivered so far in each direction. */
  carried(): { up: number; down: number } {
    return { up: this.up.carried, down: this.down.carried }
  }

  /** Stops listening, resets every connection through the link and drops what is in flight. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of this.sockets) socket.resetAndDestroy()
    this.up.close()
    this.down.close()
    await closed
  }

  private forward(dialler: Socket, target: { host: string; port: number }): void {
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true })
    this.pipe(dialler, upstream, this.up)
    this.pipe(upstream, dialler, this.down)
  }

  /** `source`'s bytes and end through `lane` to `sink`; an error or reset on `source` resets `sink` at once. */
  private pipe(source: Socket, sink: Socket, lane: Lane): void {
    this.sockets.add(source)
    source.on('data', (chunk: Buffer) => lane.push(source, sink, chunk))
    source.on('end', () => lane.end(sink))
    sink.on('drain', () => lane.drained())
    source.on('error', () => {
      // A reset crosses at once and discards what is in flight, as a TCP RST discards unread data.
      lane.drop(sink)
      if (!sink.destroyed) sink.resetAndDestroy()
    })
    source.on('close', () => this.sockets.delete(source))
  }
}

/**
 * Opens a link to the TCP listener of `addr` (`/ip4/127.0.0.1/tcp/PORT/…`, a libp2p multiaddr as a string)
 * and returns it with the same address through the link (the `/p2p/…` part kept, so noise still checks the id).
 */
export async function linkTo(addr: string, options: LinkOptions): Promise<{ link: Link; addr: string }> {
  const match = /^\/ip4\/(127\.0\.0\.1)\/tcp\/(\d+)(\/.*)?$/.exec(addr)
  if (match === null) throw new Error(`linkTo takes a /ip4/127.0.0.1/tcp/… address, not ${addr}`)
  const link = await Link.open({ host: match[1]!, port: Number(match[2]) }, options)
  return { link, addr: `/ip4/127.0.0.1/tcp/${link.port}${match[3] ?? ''}` }
}
