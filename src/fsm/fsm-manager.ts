import { InvalidBatchesStatusError } from './errors.js'
import { type FSM, FSMStatus } from './fsm.js'

// reference: Prysm@7ac522d8 beacon-chain/sync/initial-sync/fsm.go (stateMachineManager: sorted keys, isFirst,
// isLast, allMachinesInState, highestStartSlot); Lodestar@6de07362 sync/range/utils/batches.ts
// (validateBatchesStatus).

/**
 * Checks the order of batch statuses, lowest start first: `[Done|Delivered]* [Delivering]? [rest]*`. Nothing
 * after a batch that is not yet delivered may be delivered, and at most one batch is being delivered. Throws
 * `InvalidBatchesStatusError` otherwise (Lodestar `validateBatchesStatus`).
 */
export function validateBatchesStatus(statuses: Iterable<FSMStatus>): void {
  let delivering = 0
  let undelivered = 0
  let index = 0
  for (const status of statuses) {
    switch (status) {
      case FSMStatus.Done:
      case FSMStatus.Delivered:
        if (delivering > 0 || undelivered > 0) {
          throw new InvalidBatchesStatusError(`batch #${index} is ${status} after a batch that is not delivered`)
        }
        break
      case FSMStatus.Delivering:
        if (delivering > 0) throw new InvalidBatchesStatusError(`batch #${index} is a second batch being delivered`)
        if (undelivered > 0) {
          throw new InvalidBatchesStatusError(`batch #${index} is being delivered after a batch that is not delivered`)
        }
        delivering++
        break
      case FSMStatus.Pending:
      case FSMStatus.Downloading:
      case FSMStatus.Downloaded:
      case FSMStatus.Held:
      case FSMStatus.Failed:
        undelivered++
        break
      default: {
        const exhaustive: never = status
        throw new InvalidBatchesStatusError(`unknown batch status ${String(exhaustive)}`)
      }
    }
    index++
  }
}

/**
 * The window of batches, keyed and ordered by start number. The window is small (a few times the queue's
 * `window`), so a sorted array is both the simplest and the fastest structure.
 */
export class FSMManager implements Iterable<FSM> {
  private readonly machines: FSM[] = []

  get size(): number {
    return this.machines.length
  }

  /** The batch with the lowest start. */
  get first(): FSM | undefined {
    return this.machines[0]
  }

  /** The batch with the highest start. */
  get last(): FSM | undefined {
    return this.machines[this.machines.length - 1]
  }

  /** Start of the last batch, or undefined when there is none. */
  get highestStart(): number | undefined {
    return this.last?.start
  }

  /** Adds a batch; throws `InvalidBatchesStatusError` if one with the same start is there already. */
  add(fsm: FSM): void {
    const i = this.indexOf(fsm.start)
    if (this.machines[i]?.start === fsm.start) {
      throw new InvalidBatchesStatusError(`a batch starting at ${fsm.start} is already in the window`)
    }
    this.machines.splice(i, 0, fsm)
  }

  /** Removes the batch starting at `start`; returns whether there was one. */
  remove(start: number): boolean {
    const i = this.indexOf(start)
    if (this.machines[i]?.start !== start) return false
    this.machines.splice(i, 1)
    return true
  }

  get(start: number): FSM | undefined {
    const fsm = this.machines[this.indexOf(start)]
    return fsm?.start === start ? fsm : undefined
  }

  has(start: number): boolean {
    return this.get(start) !== undefined
  }

  clear(): void {
    this.machines.length = 0
  }

  /** Whether every batch is in `status`; false when there are none (Prysm `allMachinesInState`). */
  allIn(status: FSMStatus): boolean {
    return this.machines.length > 0 && this.machines.every((fsm) => fsm.status === status)
  }

  /** Batches in any of `statuses`, lowest start first. */
  inStatus(...statuses: FSMStatus[]): FSM[] {
    return this.machines.filter((fsm) => statuses.includes(fsm.status))
  }

  /** How many batches are in any of `statuses`. */
  count(...statuses: FSMStatus[]): number {
    let n = 0
    for (const fsm of this.machines) if (statuses.includes(fsm.status)) n++
    return n
  }

  isFirst(fsm: FSM): boolean {
    return this.machines[0] === fsm
  }

  isLast(fsm: FSM): boolean {
    return this.machines[this.machines.length - 1] === fsm
  }

  /** Lowest start first. */
  [Symbol.iterator](): Iterator<FSM> {
    return this.machines[Symbol.iterator]()
  }

  /**
   * Checks the window: batches do not overlap and their statuses follow `validateBatchesStatus`. Throws
   * `InvalidBatchesStatusError`; the queue runs it on every pass, as Lodestar does.
   */
  validate(): void {
    for (let i = 1; i < this.machines.length; i++) {
      const prev = this.machines[i - 1]!
      const next = this.machines[i]!
      if (prev.start + prev.count > next.start) {
        throw new InvalidBatchesStatusError(`batch ${prev.start} (${prev.count} items) overlaps batch ${next.start}`)
      }
    }
    validateBatchesStatus(this.machines.map((fsm) => fsm.status))
  }

  /** Index of the first batch whose start is `>= start` (binary search). */
  private indexOf(start: number): number {
    let lo = 0
    let hi = this.machines.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.machines[mid]!.start < start) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
