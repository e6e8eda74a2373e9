import { join } from 'node:path'
import { sleep } from '../../util/abort.js'
import { Prng } from '../../util/prng.js'
import { DemoChild, DemoFailedError } from './demo-child.js'
import type { DemoLog } from './demo-log.js'
import { DEMO_CHECKPOINT_INTERVAL_MS, DEMO_SEED, type DemoEventOf } from './demo-protocol.js'

export const DEMO_TOPIC = 'demo'
export const DEMO_SERVERS = 3

/** How long the joiner follows live items after catching up before the publisher stops. */
const LIVE_FOLLOW_MS = 3_000

/**
 * Deadlines. Every wait of the demo has one, so a stuck or lost process fails the demo with a line instead of
 * hanging it. They are generous: five nodes on a 2-core machine (shared with whatever else runs) are slow,
 * and a follower may sit in `syncing` for up to a status refresh (30 s) after it has caught up.
 */
const START_TIMEOUT_MS = 30_000
const LIVE_TIMEOUT_MS = 15_000
const PUBLISHED_TIMEOUT_MS = 15_000
const FINAL_TIMEOUT_MS = 45_000
const STOP_TIMEOUT_MS = 5_000

/** Generating or catching up on the history: 90 s, and 1 ms an item on top. */
function historyTimeout(items: number): number {
  return 90_000 + items
}

export interface DemoRunInit {
  readonly items: number
  readonly rate: number
  /** Where each process gets its store (`<dir>/<name>`). */
  readonly dir: string
  readonly log: DemoLog
  /** Aborts on SIGINT/SIGTERM. */
  readonly interrupt: AbortSignal
}

/** What the demo measured and checked, for its summary. */
export interface DemoOutcome {
  generated: DemoEventOf<'generated'>
  synced: DemoEventOf<'synced'>
  final: DemoEventOf<'published'>
  proved: DemoEventOf<'proofs'>
  joiner: DemoChild
  /** Seconds per phase. */
  phases: Record<string, number>
  pids: (number | undefined)[]
  cpuSeconds: Record<string, number>
}

/**
 * The demo's processes and phases: publisher, servers, late joiner, live following, the final comparison,
 * and a clean stop. The first process to die unexpectedly fails every wait with its error.
 */
export class DemoRun {
  private readonly init: DemoRunInit
  private readonly children: DemoChild[] = []
  private readonly failure = new AbortController()
  private readonly signal: AbortSignal
  private readonly started = performance.now()
  private readonly phases: Record<string, number> = {}

  constructor(init: DemoRunInit) {
    this.init = init
    this.signal = AbortSignal.any([init.interrupt, this.failure.signal])
  }

  /**
   * Runs every phase; `check` gets the joiner's proofs and the publisher's final state and throws when they
   * disagree. Stops every process on every way out.
   */
  async run(check: (proved: DemoEventOf<'proofs'>, final: DemoEventOf<'published'>) => void): Promise<DemoOutcome> {
    try {
      const { publisher, pub, generated } = await this.startPublisher()
      const servers = await this.startServers(pub, generated)
      const { joiner, synced } = await this.startJoiner(pub, servers)
      await this.followLive(joiner, synced)
      const { final, proved } = await this.finish(publisher, joiner, check)
      const pids = this.children.map((c) => c.pid)
      const codes = await Promise.all(this.children.map((c) => c.stop(STOP_TIMEOUT_MS)))
      codes.forEach((code, i) => {
        if (code === 0) return
        const how = code === null ? 'killed' : `exit code ${code}`
        throw new DemoFailedError(`the ${this.children[i]!.name} process did not stop cleanly (${how})`)
      })
      this.phases['total'] = this.lap()
      const cpuSeconds = Object.fromEntries(this.children.map((c) => [c.name, c.latest('stopped')?.cpuSeconds ?? 0]))
      this.init.log.line(`all ${this.children.length} processes stopped`)
      return { generated, synced, final, proved, joiner, phases: this.phases, pids, cpuSeconds }
    } catch (err) {
      // A process that died first is the cause; the waits it broke only echo it.
      if (this.failure.signal.aborted) throw this.failure.signal.reason
      if (!this.init.interrupt.aborted) throw err
      const reason = this.init.interrupt.reason
      throw new DemoFailedError(reason instanceof Error ? reason.message : String(reason), { cause: err })
    } finally {
      await Promise.all(this.children.map((c) => c.stop(STOP_TIMEOUT_MS)))
    }
  }

  private lap(): number {
    return (performance.now() - this.started) / 1000
  }

  private start(name: string, args: string[]): DemoChild {
    const child = new DemoChild({
      name,
      args: ['demo-node', '--data', join(this.init.dir, name), '--topic', DEMO_TOPIC, ...args],
      signal: this.signal,
      log: (line) => this.init.log.line(line),
      onEvent: (event) => this.init.log.event(name, event),
      onUnexpectedExit: (error) => this.failure.abort(error)
    })
    this.children.push(child)
    return child
  }

  private async startPublisher() {
    const { items, rate, log } = this.init
    const publisher = this.start('publisher', [
      '--role', 'publisher',
      '--items', String(items),
      '--rate', String(rate),
      '--checkpoint-ms', String(DEMO_CHECKPOINT_INTERVAL_MS),
      '--seed', String(DEMO_SEED)
    ])
    const pub = await publisher.waitFor('listening', 'to start', START_TIMEOUT_MS)
    log.line(`publisher: started (pid ${publisher.pid}), generating the history`)
    const generated = await publisher.waitFor('generated', 'to generate its history', historyTimeout(items))
    this.phases['generate'] = generated.seconds
    log.line(`publisher: ${items} items generated in ${generated.seconds.toFixed(1)} s, root ${generated.root}; publishing live`)
    return { publisher, pub, generated }
  }

  /** Three empty servers that follow the publisher; resolves once each holds the whole history. */
  private async startServers(pub: DemoEventOf<'listening'>, generated: DemoEventOf<'generated'>) {
    const { log } = this.init
    const mark = this.lap()
    const servers = Array.from({ length: DEMO_SERVERS }, (_, i) =>
      this.start(`server-${i + 1}`, ['--role', 'server', '--publisher', pub.peerId, '--peer', pub.addrs[0]!])
    )
    const listening = await Promise.all(servers.map((s) => s.waitFor('listening', 'to start', START_TIMEOUT_MS)))
    log.line(`servers: ${DEMO_SERVERS} started empty (pids ${servers.map((s) => s.pid).join(', ')}), following the publisher`)
    const caughtUp = await Promise.all(
      servers.map((s) =>
        s.waitFor('head', 'to catch up with the history', historyTimeout(this.init.items), (e) => e.head >= generated.head)
      )
    )
    this.phases['serversCatchUp'] = this.lap() - mark
    log.line(`servers: caught up with the history (heads ${caughtUp.map((e) => e.head).join(', ')})`)
    return listening
  }

  /** The late joiner, dialling the servers and the publisher; resolves when it first reports `synced`. */
  private async startJoiner(pub: DemoEventOf<'listening'>, servers: DemoEventOf<'listening'>[]) {
    const mark = this.lap()
    const peers = [...servers.map((s) => s.addrs[0]!), pub.addrs[0]!]
    const joiner = this.start('joiner', ['--role', 'joiner', '--publisher', pub.peerId, ...peers.flatMap((p) => ['--peer', p])])
    await joiner.waitFor('listening', 'to start', START_TIMEOUT_MS)
    this.init.log.line(`joiner: started empty (pid ${joiner.pid}), dialling ${DEMO_SERVERS} servers and the publisher`)
    const synced = await joiner.waitFor('synced', 'to catch up', historyTimeout(this.init.items))
    this.phases['joinerCatchUp'] = this.lap() - mark
    return { joiner, synced }
  }

  /** Lets the joiner follow live items for a while; its head must move. */
  private async followLive(joiner: DemoChild, synced: DemoEventOf<'synced'>): Promise<void> {
    const mark = this.lap()
    const from = Math.max(synced.head, joiner.latest('head')?.head ?? -1)
    await sleep(LIVE_FOLLOW_MS, { signal: this.signal })
    await joiner.waitFor('head', 'to follow live items', LIVE_TIMEOUT_MS, (e) => e.head > from)
    const live = joiner.latest('head')!
    this.phases['live'] = this.lap() - mark
    this.init.log.line(`joiner: following live, head ${live.head} (+${live.head - from} in ${this.phases['live'].toFixed(1)} s)`)
  }

  /** Stops the publisher, waits for the joiner to reach its final head and checks what the joiner proves. */
  private async finish(
    publisher: DemoChild,
    joiner: DemoChild,
    check: (proved: DemoEventOf<'proofs'>, final: DemoEventOf<'published'>) => void
  ) {
    const { log } = this.init
    const mark = this.lap()
    publisher.send({ cmd: 'stop-publishing' })
    const final = await publisher.waitFor('published', 'to stop publishing', PUBLISHED_TIMEOUT_MS)
    log.line(`publisher: stopped publishing at head ${final.head}, root ${final.root}`)
    joiner.send({ cmd: 'prove', head: final.head, items: proofSamples(this.init.items, final.head, joiner) })
    const proved = await joiner.waitFor('proofs', `to reach head ${final.head}`, FINAL_TIMEOUT_MS)
    check(proved, final)
    this.phases['final'] = this.lap() - mark
    log.line(`joiner: head ${proved.head}, root matches the publisher's; ${proved.proofs.length} items proved and checked`)
    return { final, proved }
  }
}

/** Items the joiner proves at random (besides both ends of the history and of the live items). */
const RANDOM_PROOFS = 8

/** The items the joiner proves: both ends of the history and of the live items, the checkpoint it adopted, and random ones. */
function proofSamples(items: number, head: number, joiner: DemoChild): number[] {
  const adopted = joiner.all('trie').filter((e) => e.what === 'adopted').map((e) => e.number)
  const prng = new Prng(DEMO_SEED)
  const random = Array.from({ length: RANDOM_PROOFS }, () => prng.int(head + 1))
  return [...new Set([0, items - 1, Math.min(items, head), head, ...adopted, ...random])].sort((a, b) => a - b)
}
