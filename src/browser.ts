/**
 * @packageDocumentation
 *
 * DSFG in a browser: the package root a bundler picks under the `browser` condition. It exports what the Node
 * root does (the service, handles, proofs, `MemoryStore`, errors, hashing) with `BrowserLevelStore` (IndexedDB)
 * in place of the LevelDB store. Nothing reachable from here imports `node:*`, classic-level or TCP
 * (`test/browser-entry.test.ts` bundles it and checks).
 */

export * from './common.js'

export { BrowserLevelStore, type BrowserLevelStoreInit } from './store/browser-level-store.js'
