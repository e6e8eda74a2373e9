import type { Writable } from 'node:stream'
import type { DemoEvent } from './demo-protocol.js'

/** Least time between two lines about the joiner's head or trie sync counters while it catches up. */
const PROGRESS_INTERVAL_MS = 2_000

/**
 * The demo's log on stderr: one line per phase or notable event of a process, each stamped with the seconds
 * since the demo started. Routine events (heads, checkpoints every two seconds) are thinned out.
 */
export class DemoLog {
  private readonly out: Writable
  private readonly started = performance.now()
  private lastProgress = 0
  private checkpointsSeen = 0
  private joinerSynced = false
  private joinerMode = ''

  constructor(out: Writable) {
    this.out = out
  }

  line(text: string): void {
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1)
    this.out.write(`[${seconds.padStart(5)} s] ${text}\n`)
  }

  /** Logs what is worth a line of the event `name` reported. */
  event(name: string, event: DemoEvent): void {
    const text = this.describe(name, event)
    if (text !== undefined) this.line(`${name}: ${text}`)
  }

  private describe(name: string, event: DemoEvent): string | undefined {
    switch (event.event) {
      case 'synced':
        if (name === 'joiner') this.joinerSynced = true
        return `caught up at head ${event.head}, ${event.seconds.toFixed(1)} s after it started following (${Math.round((event.head + 1) / Math.max(event.seconds, 0.001))} items/s)`
      case 'checkpoint':
        if (event.status === 'mismatch') return `checkpoint ${event.number} did not match its items: they are downloaded again`
        if (event.status === 'received' && this.checkpointsSeen++ === 0) return `first publisher checkpoint received (${event.number})`
        return undefined
      case 'trie':
        return trieLine(event)
      case 'trie-progress':
        if (!this.due()) return undefined
        return `trie sync of checkpoint ${event.checkpoint}: ${event.nodes} nodes (${(event.bytes / 1e6).toFixed(1)} MB), ${event.pending} pending`
      case 'head': {
        if (name !== 'joiner') return undefined
        const changed = this.joinerSynced && event.mode !== this.joinerMode
        this.joinerMode = event.mode
        if (changed) return `mode ${event.mode} at head ${event.head}`
        if (this.joinerSynced || event.head < 0 || !this.due()) return undefined
        return `head ${event.head} (${event.mode})`
      }
      case 'penalised':
        return `penalised peer ${event.peer}: ${event.reason}`
      case 'listening':
      case 'generated':
      case 'published':
      case 'proofs':
      case 'stopped':
        // The demo's own lines say what these mean.
        return undefined
      default: {
        const never: never = event
        return `unknown event ${JSON.stringify(never)}`
      }
    }
  }

  private due(): boolean {
    const now = performance.now()
    if (now - this.lastProgress < PROGRESS_INTERVAL_MS) return false
    this.lastProgress = now
    return true
  }
}

function trieLine(event: Extract<DemoEvent, { event: 'trie' }>): string {
  switch (event.what) {
    case 'started':
      return `checkpoint sync: trie sync of checkpoint ${event.number} started, items after it download meanwhile`
    case 'retarget':
      return `checkpoint sync: re-targeted to the newer checkpoint ${event.number}`
    case 'adopted':
      return `checkpoint sync: topic trie of checkpoint ${event.number} adopted (items 0..${event.number} verified by its root)`
    case 'failed':
      return `checkpoint sync of checkpoint ${event.number} failed (${event.error ?? 'no reason'}): downloading the items instead`
    default: {
      const never: never = event.what
      return `unknown trie event ${String(never)}`
    }
  }
}
