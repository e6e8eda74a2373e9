/**
 * @packageDocumentation
 *
 * DSFG: a late joiner of a js-libp2p gossipsub topic catches up on everything the topic carried, from
 * untrusted peers, with every byte verified against a Merkle-Patricia trie root.
 *
 * The root is what applications use: the `dsfg` service and its handles, proofs, stores, errors and the types
 * they carry. The pure cores (trie sync scheduler, downloader state machines, trie builder) and every tunable's
 * default are in `dsfg/core`; a ready-made libp2p node (TCP, noise, yamux) is in `dsfg/node`.
 */

export * from './common.js'

// The Node stores: LevelDB, and the CLI's store specs. The browser root has `BrowserLevelStore` instead.
export { LevelStore, type LevelStoreInit } from './store/level-store.js'
export { openStore, MEMORY_STORE_SPEC, type OpenStoreOptions } from './store/open-store.js'
