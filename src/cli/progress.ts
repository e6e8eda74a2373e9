import type { Writable } from 'node:stream'

/** How often progress is redrawn on a terminal. */
const TTY_INTERVAL_MS = 200
/** How often a JSON progress line is written when stderr is not a terminal: logs should stay short. */
const LINE_INTERVAL_MS = 1000
/**
 * Overrides both intervals, in milliseconds (0: every update). Not a documented option: the tests set it to
 * see progress lines from inputs small enough to finish in a second.
 */
export const PROGRESS_INTERVAL_ENV = 'DSFG_PROGRESS_INTERVAL_MS'

/** Where a command's work stands, as it knows it: the numbers it has, and a total only when it has one. */
export interface ProgressSnapshot {
  /** What the command is doing: `trie` (a trie sync), `items` (a topic's items), `read`, `store`, `publish`. */
  readonly phase: string
  /** What `done` counts: `nodes`, `items`, `entries`. */
  readonly unit: string
  /** How many `unit`s are done. */
  readonly done: number
  /**
   * How many `unit`s the phase has in all, when that is known for certain (never an estimate): it gives the
   * percentage. A trie sync has none: the trie's size is only known once it is all downloaded.
   */
  readonly total?: number
  /** Bytes handled so far (downloaded, read). */
  readonly bytes?: number
  /** The phase's bytes in all, when known (the size of an input file): gives the percentage when `total` is absent. */
  readonly bytesTotal?: number
  /** Numbers shown as they are: pending, peers, a checkpoint's number. */
  readonly counts?: Readonly<Record<string, number>>
  /**
   * The phase's total changed, or its count went back, since the phase began (a sync's target moves when peers
   * report newer items; unverified items are dropped): `total` is still shown, as what is aimed at now, but no
   * percentage or ETA, which would go backwards. `ProgressReporter` sets it for the rest of the phase.
   */
  readonly moving?: boolean
}

/** Units and bytes per second over the phase so far (measured by the reporter). */
export interface ProgressRates {
  readonly rate: number
  readonly bytesRate: number
}

/**
 * Percent done, rounded down (100 only when all is done), from `total`, else from `bytesTotal`; `undefined`
 * when the snapshot has neither, or is `moving`: then there is no percentage to show, and no ETA.
 */
export function percentDone(s: ProgressSnapshot): number | undefined {
  if (s.moving === true) return undefined
  const fraction =
    s.total !== undefined ? ratio(s.done, s.total) : s.bytesTotal !== undefined ? ratio(s.bytes ?? 0, s.bytesTotal) : undefined
  return fraction === undefined ? undefined : Math.floor(fraction * 100)
}

function ratio(done: number, total: number): number {
  if (total <= 0) return 1
  return Math.min(1, Math.max(0, done / total))
}

/** Seconds left at the current rate, only where there is a percentage; `undefined` when unknown. */
export function secondsLeft(s: ProgressSnapshot, rates: ProgressRates): number | undefined {
  if (s.moving === true) return undefined
  if (s.total !== undefined) return rates.rate > 0 ? Math.max(0, s.total - s.done) / rates.rate : undefined
  if (s.bytesTotal !== undefined) return rates.bytesRate > 0 ? Math.max(0, s.bytesTotal - (s.bytes ?? 0)) / rates.bytesRate : undefined
  return undefined
}

/**
 * One JSON progress line: `{"phase", <unit>: done, "total"?, "bytes"?, "bytesTotal"?, "percent"?, "rate",
 * "etaS"?, …counts}`; `percent` and `etaS` only when a total is known.
 */
export function progressRecord(s: ProgressSnapshot, rates: ProgressRates): Record<string, string | number> {
  const record: Record<string, string | number> = { phase: s.phase, [s.unit]: s.done }
  if (s.total !== undefined) record['total'] = s.total
  if (s.bytes !== undefined) record['bytes'] = s.bytes
  if (s.bytesTotal !== undefined) record['bytesTotal'] = s.bytesTotal
  const percent = percentDone(s)
  if (percent !== undefined) record['percent'] = percent
  record['rate'] = Math.round(rates.rate)
  const eta = secondsLeft(s, rates)
  if (eta !== undefined) record['etaS'] = Math.ceil(eta)
  return { ...record, ...s.counts }
}

/**
 * The terminal's line: `publish  4096/50000 items  8%  1.2 MB  2345 items/s  ETA 19s`, or without a total
 * `trie  12345 nodes  3.4 MB  1234 nodes/s  pending 456  peers 3`.
 */
export function formatProgress(s: ProgressSnapshot, rates: ProgressRates): string {
  const parts = [s.phase, s.total === undefined ? `${s.done} ${s.unit}` : `${s.done}/${s.total} ${s.unit}`]
  if (s.bytes !== undefined) {
    parts.push(s.bytesTotal === undefined ? `${megabytes(s.bytes)} MB` : `${megabytes(s.bytes)}/${megabytes(s.bytesTotal)} MB`)
  }
  const percent = percentDone(s)
  if (percent !== undefined) parts.push(`${percent}%`)
  parts.push(`${Math.round(rates.rate)} ${s.unit}/s`)
  for (const [name, value] of Object.entries(s.counts ?? {})) parts.push(`${name} ${value}`)
  const eta = secondsLeft(s, rates)
  if (eta !== undefined) parts.push(`ETA ${Math.ceil(eta)}s`)
  return parts.join('  ')
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1)
}

/** Where a phase started, for its rates, and whether its total stayed put (see `ProgressSnapshot.moving`). */
interface PhaseStart {
  readonly phase: string
  readonly at: number
  readonly done: number
  readonly bytes: number
  readonly total: number | undefined
  /** The count of the phase's latest update. */
  last: number
  moving: boolean
}

export interface ProgressReporterInit {
  /** Time between two reports. @default 200 ms on a terminal, 1 s otherwise, or `DSFG_PROGRESS_INTERVAL_MS` */
  intervalMs?: number
}

/**
 * Progress on stderr: one line redrawn in place on a terminal, a JSON line per interval otherwise. Nothing is
 * written during the first interval, so a command that finishes within it prints no progress at all.
 */
export class ProgressReporter {
  private readonly out: Writable
  private readonly tty: boolean
  private readonly intervalMs: number
  private last: number
  private start: PhaseStart | undefined
  private latest: ProgressSnapshot | undefined
  private drawn = false

  constructor(out: Writable, init: ProgressReporterInit = {}, now = performance.now()) {
    this.out = out
    this.tty = (out as { isTTY?: boolean }).isTTY === true
    this.intervalMs = init.intervalMs ?? envInterval() ?? (this.tty ? TTY_INTERVAL_MS : LINE_INTERVAL_MS)
    this.last = now
  }

  /**
   * Takes the newest state; writes it when an interval has passed since the last report. Once the phase's
   * total changes or its count goes back, the rest of the phase is shown without a percentage (`moving`): a
   * percentage is shown only of a total that holds, and never goes backwards.
   */
  update(s: ProgressSnapshot, now = performance.now()): void {
    let start = this.start
    if (start?.phase !== s.phase) {
      start = { phase: s.phase, at: now, done: s.done, bytes: s.bytes ?? 0, total: s.total, last: s.done, moving: false }
      this.start = start
    }
    if (s.total !== start.total || s.done < start.last) start.moving = true
    start.last = s.done
    const latest = start.moving ? { ...s, moving: true } : s
    this.latest = latest
    if (now - this.last < this.intervalMs) return
    this.last = now
    this.write(latest, now)
  }

  /** On a terminal, draws the last state once more and ends the line, so the summary starts on a fresh one. */
  finish(now = performance.now()): void {
    if (this.drawn && this.latest !== undefined) this.write(this.latest, now)
    if (this.drawn) this.out.write('\n')
    this.drawn = false
  }

  private write(s: ProgressSnapshot, now: number): void {
    const rates = this.rates(s, now)
    if (this.tty) {
      this.out.write(`\r${formatProgress(s, rates)}\x1b[K`)
      this.drawn = true
    } else {
      this.out.write(`${JSON.stringify(progressRecord(s, rates))}\n`)
    }
  }

  private rates(s: ProgressSnapshot, now: number): ProgressRates {
    const start = this.start!
    const seconds = (now - start.at) / 1000
    if (seconds <= 0) return { rate: 0, bytesRate: 0 }
    return { rate: Math.max(0, s.done - start.done) / seconds, bytesRate: Math.max(0, (s.bytes ?? 0) - start.bytes) / seconds }
  }
}

function envInterval(): number | undefined {
  const text = process.env[PROGRESS_INTERVAL_ENV]
  if (text === undefined || text === '') return undefined
  const ms = Number(text)
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined
}
