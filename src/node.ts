/**
 * @packageDocumentation
 *
 * `dsfg/node`: a ready-made libp2p node with the transport stack DSFG is built for (TCP, noise, yamux,
 * identify, gossipsub) and the `dsfg` service. It is a subpath of its own so that an application with its own
 * libp2p node, importing only the package root, does not load these transports.
 */
export { createDsfgNode, type CreateDsfgNodeOptions, type DsfgLibp2p } from './node/create-node.js'
export { SERVER_CONNECTION_LIMITS } from './constants.js'
