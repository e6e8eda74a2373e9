/**
 * @packageDocumentation
 *
 * `dsfg/node` in a browser: `createDsfgNode()` with WebSockets (dial only) instead of TCP, noise, yamux,
 * identify, gossipsub and the `dsfg` service.
 */
export { createDsfgNode, type CreateBrowserDsfgNodeOptions as CreateDsfgNodeOptions } from './node/create-browser-node.js'
export type { DsfgLibp2p } from './node/node-services.js'
