/**
 * Every error the library throws is one of these classes. Callers branch on the class (or on `code`),
 * never on the message. `name` is stable across releases.
 */
export class DsfgError extends Error {
  static readonly code: string = 'ERR_DSFG'
  readonly code: string

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = (new.target as typeof DsfgError).code
  }
}

/** A hex string, number or other textual input at an API or CLI edge is malformed. */
export class InvalidInputError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_INPUT'
}

/** A byte string that should be an RLP-encoded trie node is not a well-formed one. */
export class InvalidNodeError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_NODE'
}

/** A Merkle proof does not prove what it claims (wrong hashes, missing nodes, inconsistent path). */
export class InvalidProofError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_PROOF'
}

/** A node the trie walk needed is not in the store: the trie at that root is incomplete locally. */
export class MissingNodeError extends DsfgError {
  static override readonly code: string = 'ERR_MISSING_NODE'
  readonly hash: Uint8Array

  constructor(hash: Uint8Array, message?: string) {
    super(message ?? 'trie node missing from store')
    this.hash = hash
  }
}

/** The store was used after `close()`, or failed underneath. */
export class StoreError extends DsfgError {
  static override readonly code: string = 'ERR_STORE'
}

/** `TrieSync.process` was given a node nobody asked for. */
export class NotRequestedError extends DsfgError {
  static override readonly code: string = 'ERR_NOT_REQUESTED'
}

/** `TrieSync.process` was given a node it already accepted. */
export class AlreadyProcessedError extends DsfgError {
  static override readonly code: string = 'ERR_ALREADY_PROCESSED'
}

/** A command line was malformed: unknown command or option, missing or repeated argument, bad flag value. */
export class UsageError extends DsfgError {
  static override readonly code: string = 'ERR_USAGE'
}

/** Every connected peer answered that it does not have a node the sync needs. */
export class NodeUnavailableError extends DsfgError {
  static override readonly code: string = 'ERR_NODE_UNAVAILABLE'
  readonly hash: Uint8Array

  constructor(hash: Uint8Array, message: string) {
    super(message)
    this.hash = hash
  }
}

/** A peer's reply broke the protocol (bad frame, bad status, too large, wrong shape). */
export class ProtocolError extends DsfgError {
  static override readonly code: string = 'ERR_PROTOCOL'
}

/**
 * A request's stream ended, was reset or timed out before its reply came: nothing the peer sent broke a rule,
 * so the request is retried, not blamed.
 */
export class StreamEndedError extends DsfgError {
  static override readonly code: string = 'ERR_STREAM_ENDED'
}

/** The operation was aborted through its signal or by `stop()`. */
export class AbortError extends DsfgError {
  static override readonly code: string = 'ABORT_ERR'
}

/**
 * A CLI command was stopped by SIGINT or SIGTERM: an orderly stop (its work aborted, the store flushed and
 * closed), neither bad data nor a bug. The CLI exits 128 + the signal's number, as a shell reports it.
 */
export class InterruptedError extends DsfgError {
  static override readonly code: string = 'ERR_INTERRUPTED'
  readonly signal: 'SIGINT' | 'SIGTERM'

  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`)
    this.signal = signal
  }
}

/** A call that may not run twice at once was made while it was running. */
export class BusyError extends DsfgError {
  static override readonly code: string = 'ERR_BUSY'
}

/** The libp2p node lacks something a DSFG feature needs (for example a gossipsub service). */
export class ServiceConfigError extends DsfgError {
  static override readonly code: string = 'ERR_SERVICE_CONFIG'
}

/** How a peer's reply proved the peer faulty. */
export type PeerFaultKind =
  /** Not a valid frame, or a frame that breaks the protocol: bad shape, items outside the range, too many. */
  | 'malformed'
  /** A reply frame over the size limit of its request. */
  | 'oversized'
  /** An item whose keccak256 differs from the hash the caller expected for its number. */
  | 'hash-mismatch'
  /** Items that a range proof against the checkpoint root the caller named does not prove. */
  | 'bad-proof'

/**
 * A peer's reply broke the protocol or failed verification: the peer named in `peer` is to blame and may be
 * penalised. Anything else a request can fail with (timeout, reset, rate limiting) is no proof against it.
 */
export class PeerFaultError extends DsfgError {
  static override readonly code: string = 'ERR_PEER_FAULT'
  readonly peer: string
  readonly reason: PeerFaultKind

  constructor(peer: string, reason: PeerFaultKind, message: string, options?: { cause?: unknown }) {
    super(`${peer}: ${message}`, options)
    this.peer = peer
    this.reason = reason
  }
}

/** Why a request failed without the peer being to blame. */
export type PeerRequestFailure =
  /** No reply before the deadline. */
  | 'timeout'
  /** The dial, the stream or the connection failed (reset, closed early). */
  | 'transport'
  /** The peer is not one we know how to reach. */
  | 'not-connected'

/**
 * A request to `peer` failed in a way that is no proof against the peer: retry it elsewhere or later, without
 * a penalty. The underlying error is the `cause`.
 */
export class PeerRequestError extends DsfgError {
  static override readonly code: string = 'ERR_PEER_REQUEST'
  readonly peer: string
  readonly reason: PeerRequestFailure

  constructor(peer: string, reason: PeerRequestFailure, message: string, options?: { cause?: unknown }) {
    super(`${peer}: ${message}`, options)
    this.peer = peer
    this.reason = reason
  }
}

/** `TopicStore.put` was given an item number other than the topic's head + 1; nothing was written. */
export class ItemOutOfOrderError extends DsfgError {
  static override readonly code: string = 'ERR_ITEM_OUT_OF_ORDER'
  /** The only number the topic accepts next (its head + 1). */
  readonly expected: number
  readonly got: number

  constructor(expected: number, got: number, message?: string) {
    super(message ?? `item ${got} out of order: the topic expects item ${expected} next`)
    this.expected = expected
    this.got = got
  }
}

/**
 * A trie offered as a topic's trie is not one: its keys are not exactly the item numbers `0..number`, an item
 * is empty or too large, it disagrees with items the topic already holds, or its items do not rebuild to its
 * root. Also thrown when a topic's stored items no longer rebuild to its stored checkpoint root.
 */
export class TopicTrieError extends DsfgError {
  static override readonly code: string = 'ERR_TOPIC_TRIE'
}

/** A topic sync failed and made no progress: no connected peer could give the next verified items. */
export class TopicSyncStalledError extends DsfgError {
  static override readonly code: string = 'ERR_TOPIC_SYNC_STALLED'
}

/**
 * A checkpoint record that cannot be trusted: not a libp2p envelope, a signature that does not verify, the wrong
 * payload type or topic, a malformed payload, or a signer other than the topic's publisher.
 */
export class InvalidCheckpointRecordError extends DsfgError {
  static override readonly code: string = 'ERR_INVALID_CHECKPOINT_RECORD'
}

/**
 * A node's private key file (the CLI's `node.key` in a `--data` directory) cannot be read, is not a libp2p
 * private key, or cannot be written.
 */
export class NodeKeyError extends DsfgError {
  static override readonly code: string = 'ERR_NODE_KEY'
}

/**
 * A peer's content hashes are of a history that does not extend ours: its hash of our last item is not ours. No
 * fault (another history, or a liar), but its hashes must not decide what we append.
 */
export class HistoryMismatchError extends DsfgError {
  static override readonly code: string = 'ERR_HISTORY_MISMATCH'

  constructor(peer: string, n: number) {
    super(`${peer}'s hash of item ${n} is not ours`)
  }
}

/**
 * The peer answered RATE_LIMITED (its request limits or its reply budget are used up): "later", not "liar". Try
 * it again after a short wait, or ask another peer; never an offence.
 */
export class PeerBusyError extends DsfgError {
  static override readonly code: string = 'ERR_PEER_BUSY'
}

/** The peer refused a request we consider well formed (its limits may be lower than ours); not an offence. */
export class RequestRejectedError extends DsfgError {
  static override readonly code: string = 'ERR_REQUEST_REJECTED'
}
