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

/** The operation was aborted through its signal or by `stop()`. */
export class AbortError extends DsfgError {
  static override readonly code: string = 'ABORT_ERR'
}

/** A call that may not run twice at once was made while it was running. */
export class BusyError extends DsfgError {
  static override readonly code: string = 'ERR_BUSY'
}

/** The libp2p node lacks something a DSFG feature needs (for example a gossipsub service). */
export class ServiceConfigError extends DsfgError {
  static override readonly code: string = 'ERR_SERVICE_CONFIG'
}
