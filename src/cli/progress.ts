import type { Writable } from 'node:stream'
import type { StateSyncStats } from '../sync/state-syncer.js'

/** How often progress is written: redraws on a terminal, JSON lines otherwise (logs should stay short). */
const TTY_INTERVAL_MS = 200
const LINE_INTERVAL_MS = 1000

/**
 * Sync progress on stderr: a one-line bar (nodes, MB, rate, peers, ETA) redrawn in place on a terminal,
 * periodic JSON lines otherwise. The total is unknown until the sync ends, so the bar's fraction and the ETA
 * are estimates from what is done and what is pending now.
 */
export class ProgressReporter {
  private readonly out: Writable & { isTTY?: boolean; columns?: number }
  private readonly tty: boolean
  private last = 0
  private drawn = false

  constructor(out: Writable) {
    this.out = out
    this.tty = (out as { isTTY?: boolean }).isTTY === true
  }

  update(stats: StateSyncStats, now = Date.now()): void {
    if (now - this.last < (this.tty ? TTY_INTERVAL_MS : LINE_INTERVAL_MS)) return
    this.last = now
    if (this.tty) {
      this.out.write(`\r${formatBar(stats)}\x1b[K`)
      this.drawn = true
    } else {
      this.out.write(`${JSON.stringify(progressLine(stats))}\n`)
    }
  }

  /** Ends the bar's line so the summary starts on a fresh one. */
  finish(): void {
    if (this.drawn) this.out.write('\n')
    this.drawn = false
  }
}

export function progressLine(stats: StateSyncStats): Record<string, number> {
  return {
    nodes: stats.nodes,
    MB: round(stats.bytes / 1e6, 2),
    pending: stats.pending,
    peers: stats.peers,
    rate: Math.round(stats.rate),
    etaS: round(eta(stats), 1)
  }
}

function eta(stats: StateSyncStats): number {
  return stats.rate > 0 ? stats.pending / stats.rate : Number.POSITIVE_INFINITY
}

export function formatBar(stats: StateSyncStats, width = 24): string {
  const total = stats.nodes + stats.pending
  const fraction = total === 0 ? 0 : stats.nodes / total
  const filled = Math.round(fraction * width)
  const etaS = eta(stats)
  return [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    `${(fraction * 100).toFixed(0).padStart(3)}%`,
    `${stats.nodes} nodes`,
    `${(stats.bytes / 1e6).toFixed(1)} MB`,
    `${Math.round(stats.rate)}/s`,
    `${stats.peers} peers`,
    `ETA ${Number.isFinite(etaS) ? `${Math.ceil(etaS)}s` : '?'}`
  ].join('  ')
}

function round(n: number, digits: number): number {
  if (!Number.isFinite(n)) return -1
  const f = 10 ** digits
  return Math.round(n * f) / f
}
