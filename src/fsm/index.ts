/**
 * The numbered-batch downloader (DESIGN.md section 3): `Queue` schedules batches of numbered items over several
 * peers and delivers them in order; `FSMManager` keeps the window of batches; `FSM` is one batch's state
 * machine. Pure over injected I/O (`QueueIO`) and an injected clock.
 */
export * from './constants.js'
export {
  BatchFailedError,
  type BatchFailureKind,
  DeliveryError,
  InvalidBatchesStatusError,
  InvalidBatchTransitionError,
  InvalidItemsError,
  NoPeersError,
  QueueClosedError,
  RequestTimeoutError
} from './errors.js'
export { FSM, type FSMInit, type FSMState, FSMStatus, type HoldReason } from './fsm.js'
export { FSMManager, validateBatchesStatus } from './fsm-manager.js'
export { isEligible, PeerBalancer } from './peer-balancer.js'
export { Queue } from './queue.js'
export type {
  BatchDebugState,
  BatchDelivered,
  QueueDebugState,
  QueueEvents,
  QueueInit,
  QueueProgress,
  QueueRefused,
  QueueResult,
  QueueStalled
} from './queue-types.js'
export type {
  ConsumerFault,
  ConsumerResult,
  DeliverOptions,
  Item,
  PeerFault,
  PeerFaultReason,
  PeerInfo,
  QueueIO,
  Source
} from './types.js'
export { type ItemsCheck, type ItemsFault, validateItems } from './validate.js'
