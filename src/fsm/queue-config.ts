import { BUSY_PEER_BACKOFF_MS, MAX_BUSY_PEER_BACKOFF_MS } from '../constants.js'
import { InvalidInputError } from '../errors.js'
import { type Clock, systemClock } from '../util/clock.js'
import { type Log, silentLog } from '../util/log.js'
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_HOLD_TIMEOUT_MS,
  DEFAULT_MAX_DOWNLOAD_ATTEMPTS,
  DEFAULT_MAX_HOLD_MS,
  DEFAULT_MAX_IN_FLIGHT_PER_PEER,
  DEFAULT_MAX_PROCESS_ATTEMPTS,
  DEFAULT_NO_PEER_TIMEOUT_MS,
  DEFAULT_NO_PEER_WATCHDOG_MS,
  DEFAULT_WINDOW
} from './constants.js'
import type { QueueInit } from './queue-types.js'
import type { PeerFaultReason, QueueIO } from './types.js'

/** `QueueInit` checked, with every default filled in. The caller's object is never written to. */
export interface QueueConfig {
  start: number
  target: number
  io: QueueIO
  clock: Clock
  log: Log
  batchSize: number
  window: number
  splitBytes: number
  maxInFlightPerPeer: number
  holdTimeoutMs: number
  maxHoldMs: number
  fetchTimeoutMs: number
  noPeerWatchdogMs: number
  noPeerTimeoutMs: number
  busyBackoffMs: number
  maxBusyBackoffMs: number
  maxDownloadAttempts: number
  maxProcessAttempts: number
  onPeerFault: ((peer: string, reason: PeerFaultReason) => void) | undefined
}

/** Checks `init` (throwing `InvalidInputError`) and fills in the defaults from `constants.ts`. */
export function resolveQueueInit(init: QueueInit): QueueConfig {
  if (!Number.isSafeInteger(init.start) || init.start < 0) {
    throw new InvalidInputError(`start must be a non-negative safe integer, got ${init.start}`)
  }
  if (!Number.isSafeInteger(init.target) || init.target < -1) {
    throw new InvalidInputError(`target must be a safe integer >= -1, got ${init.target}`)
  }
  const io = init.io as Partial<QueueIO> | undefined
  if (typeof io?.peers !== 'function' || typeof io.fetch !== 'function' || typeof io.deliver !== 'function') {
    throw new InvalidInputError('io must provide peers(), fetch() and deliver()')
  }
  const holdTimeoutMs = duration(init.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS, 'holdTimeoutMs')
  return {
    start: init.start,
    target: init.target,
    io: init.io,
    clock: init.clock ?? systemClock,
    log: init.log ?? silentLog,
    batchSize: count(init.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize'),
    window: count(init.window ?? DEFAULT_WINDOW, 'window'),
    splitBytes: init.splitBytes === undefined || init.splitBytes === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : count(init.splitBytes, 'splitBytes'),
    maxInFlightPerPeer: count(init.maxInFlightPerPeer ?? DEFAULT_MAX_IN_FLIGHT_PER_PEER, 'maxInFlightPerPeer'),
    holdTimeoutMs,
    // a longer first hold than the cap would make the cap meaningless: the cap gives way
    maxHoldMs: Math.max(duration(init.maxHoldMs ?? DEFAULT_MAX_HOLD_MS, 'maxHoldMs'), holdTimeoutMs),
    fetchTimeoutMs: duration(init.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS, 'fetchTimeoutMs'),
    noPeerWatchdogMs: duration(init.noPeerWatchdogMs ?? DEFAULT_NO_PEER_WATCHDOG_MS, 'noPeerWatchdogMs'),
    noPeerTimeoutMs: duration(init.noPeerTimeoutMs ?? DEFAULT_NO_PEER_TIMEOUT_MS, 'noPeerTimeoutMs', true),
    busyBackoffMs: duration(init.busyBackoffMs ?? BUSY_PEER_BACKOFF_MS, 'busyBackoffMs'),
    maxBusyBackoffMs: duration(init.maxBusyBackoffMs ?? MAX_BUSY_PEER_BACKOFF_MS, 'maxBusyBackoffMs'),
    maxDownloadAttempts: count(init.maxDownloadAttempts ?? DEFAULT_MAX_DOWNLOAD_ATTEMPTS, 'maxDownloadAttempts'),
    maxProcessAttempts: count(init.maxProcessAttempts ?? DEFAULT_MAX_PROCESS_ATTEMPTS, 'maxProcessAttempts'),
    onPeerFault: init.onPeerFault
  }
}

function count(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidInputError(`${name} must be a positive safe integer, got ${value}`)
  }
  return value
}

function duration(value: number, name: string, infinite = false): number {
  if (typeof value !== 'number' || !(value > 0) || (!infinite && !Number.isFinite(value))) {
    throw new InvalidInputError(`${name} must be a positive number of milliseconds, got ${value}`)
  }
  return value
}
