import { type Dsfg, type DsfgComponents, type DsfgInit, DsfgService } from './dsfg-service.js'

export type { Dsfg, DsfgComponents, DsfgInit, SyncRootOptions } from './dsfg-service.js'
export type { StateSyncHandle } from './state-sync-handle.js'

/**
 * The DSFG libp2p service: `createLibp2p({ services: { dsfg: dsfg({ store }) } })` serves trie nodes from the
 * store and syncs roots from peers that serve them.
 */
export function dsfg(init: DsfgInit = {}): (components: DsfgComponents) => Dsfg {
  return (components) => new DsfgService(components, init)
}
