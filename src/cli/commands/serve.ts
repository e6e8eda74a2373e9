import { UsageError } from '../../errors.js'
import type { PeerId } from '@libp2p/interface'
import { SERVER_CONNECTION_LIMITS } from '../../constants.js'
import { openStore } from '../../store/open-store.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { multiaddrFlag, NODE_DATA_DESCRIPTION, numberFlag, serveTrustFlags, TRUST_OPTIONS, type TopicTrust, topicFlags, trustGiven } from '../flags.js'
import { writeJson } from '../io.js'
import { hostPortFlag, wsListenAddress } from '../host-port.js'
import { type MetricsServer, startMetricsServer } from '../metrics-server.js'
import { nodeKeyFor } from '../node-key.js'
import { topicTrust } from '../own-topic.js'
import { serveWebPage, type WebPageConfig, type WebPageServer } from '../web-page.js'
import { terminationSignal, untilAborted } from '../signals.js'

export const serveCommand = defineCommand({
  name: 'serve',
  summary: SUMMARIES.serve,
  description: [
    'Starts a libp2p node (TCP, with --ws WebSockets too; noise, yamux, identify, gossipsub) that answers',
    '/dsfg/nodes/1.0.0 from --data, and for each --topic the status, contents and hashes protocols, while following the topic: it downloads',
    'what peers have beyond its head and applies live gossiped items. --publisher TOPIC=PEERID says whom one topic',
    'trusts, and --publisher PEERID or --quorum (one of them) whom every other --topic trusts (see the README\'s trust model);',
    'a topic DIR published (`dsfg publish`) trusts only the key it was published with: with no flag for it, that is',
    'its publisher, and a flag naming other trust for it is refused. Prints one JSON line',
    '{"peerId","addrs":[…],"topics":[…]} once listening, then runs until SIGINT or SIGTERM, when it closes the',
    'node and the store and exits 0. The peer id comes from the key in DIR/node.key (created on first use), so',
    'it stays the same across restarts; `dsfg id --data DIR` prints it without starting a node.',
    '--metrics HOST:PORT serves the node\'s metrics (dsfg_*, libp2p_*, nodejs_*) as Prometheus text at',
    'http://HOST:PORT/metrics, and adds its "metrics" URL to the first line (port 0 picks a free port).'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: NODE_DATA_DESCRIPTION },
    listen: {
      type: 'string',
      value: 'MADDR',
      multiple: true,
      description: 'listen address (repeatable); default /ip4/127.0.0.1/tcp/0'
    },
    topic: {
      type: 'string',
      value: 'T',
      multiple: true,
      description: 'topic to serve and keep following from peers and live gossip (repeatable)'
    },
    ws: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'also listen on WebSockets there (/ip4/HOST/tcp/PORT/ws), the transport a browser tab dials'
    },
    web: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'serve the browser page there over HTTP (needs --ws): a tab joins a topic of this server and syncs it'
    },
    ...TRUST_OPTIONS,
    publisher: {
      type: 'string',
      value: '[TOPIC=]PEERID',
      multiple: true,
      description:
        "whose signed items and checkpoints alone count: PEERID for every --topic without its own (once, not with --quorum); TOPIC=PEERID for that topic (repeatable)"
    },
    peer: { type: 'string', value: 'MADDR', multiple: true, description: 'peer to dial at start (repeatable)' },
    metrics: { type: 'string', value: 'HOST:PORT', description: 'serve Prometheus metrics at http://HOST:PORT/metrics' },
    'max-connections-per-host': {
      type: 'string',
      value: 'N',
      description: `inbound connections one IP address may hold at once, 0 for no limit (default ${SERVER_CONNECTION_LIMITS.maxConnectionsPerHost}; clients behind one NAT, or all on 127.0.0.1, share it)`
    }
  },
  async run({ options }, io) {
    const peers = options.peer.map((p) => multiaddrFlag(p))
    const maxConnectionsPerHost =
      numberFlag(options['max-connections-per-host'], '--max-connections-per-host') ?? SERVER_CONNECTION_LIMITS.maxConnectionsPerHost
    for (const address of options.listen) multiaddrFlag(address, '--listen')
    const metricsAddress = options.metrics === undefined ? undefined : hostPortFlag(options.metrics, '--metrics')
    const ws = options.ws === undefined ? [] : [wsListenAddress(hostPortFlag(options.ws, '--ws'))]
    const web = options.web === undefined ? undefined : hostPortFlag(options.web, '--web')
    if (web !== undefined && ws.length === 0) throw new UsageError('--web needs --ws: a browser tab dials WebSockets')
    const topicNames = topicFlags(options.topic)
    if (topicNames.length === 0 && trustGiven(options)) throw new UsageError('--publisher and --quorum need a --topic')
    const trust = serveTrustFlags(options, topicNames)
    const stop = terminationSignal()
    const store = await openStore(options.data)
    try {
      // libp2p, and the metrics' modules when asked for, load only now that the options are checked: `--help` and
      // a usage error answer without them (as `dsfg sync` does).
      const [{ createDsfgNode, DEFAULT_LISTEN_ADDRESS }, { dialWithRetry }, metrics] = await Promise.all([
        import('../../node/create-node.js'),
        import('../../node/dial.js'),
        metricsAddress === undefined ? undefined : nodeMetrics()
      ])
      // Stopped while they loaded (a second or so): exit 130/143 now, not after starting and announcing a node.
      stop.signal.throwIfAborted()
      // `--ws` adds to the listen addresses: without `--listen`, the node still listens on TCP as it would.
      const tcp = options.listen.length > 0 ? options.listen : [DEFAULT_LISTEN_ADDRESS]
      const listen = options.listen.length > 0 || ws.length > 0 ? [...tcp, ...ws] : undefined
      const privateKey = await nodeKeyFor(options.data)
      // A topic published from this directory has the key it was published with as its publisher: it never takes
      // items or checkpoints from anyone else, nor appends to its history.
      const topics: ({ name: string } & TopicTrust)[] = []
      for (const name of topicNames) topics.push({ name, ...(await topicTrust(store, name, trust.get(name)!, privateKey, options.data, 'serve')).trust })
      const node = await createDsfgNode({
        store,
        listen,
        topics,
        privateKey,
        connectionLimits: { ...SERVER_CONNECTION_LIMITS, maxConnectionsPerHost },
        metrics: metrics?.libp2p
      })
      let metricsServer: MetricsServer | undefined
      const following: Promise<void>[] = []
      let page: WebPageServer | undefined
      // Ends the follow loops on every way out, not only on SIGINT/SIGTERM.
      const follow = new AbortController()
      const followSignal = AbortSignal.any([stop.signal, follow.signal])
      try {
        stop.signal.throwIfAborted()
        if (metricsAddress !== undefined && metrics !== undefined) metricsServer = await startMetricsServer(metricsAddress, metrics.registry)
        for (const topic of topics) following.push(node.services.dsfg.topic(topic).follow({ signal: followSignal }))
        const addrs = node.getMultiaddrs().map((a) => a.toString())
        page = web === undefined ? undefined : await serveWebPage(web, webPageConfig(addrs, topics))
        await writeJson(io.stdout, {
          peerId: node.peerId.toString(),
          addrs,
          topics: topicNames,
          ...(metricsServer === undefined ? {} : { metrics: metricsServer.url }),
          ...(page === undefined ? {} : { web: page.url })
        })
        // All at once: one peer whose dials time out (tried again for up to a minute and a half) must not hold
        // up the others.
        for (const p of peers) {
          dialWithRetry((a, o) => node.dial(a, o), p, { signal: stop.signal, log: node.logger.forComponent('dsfg:dial') }).catch((err: unknown) => {
            if (!stop.signal.aborted) io.stderr.write(`dsfg: could not dial ${p.toString()}: ${String(err)}\n`)
          })
        }
        await untilAborted(stop.signal)
      } finally {
        await page?.close()
        follow.abort()
        await metricsServer?.close()
        await Promise.allSettled(following)
        await node.stop()
      }
    } finally {
      stop.dispose()
      await store.close()
    }
  }
})

/** What the page pre-fills: the WebSockets addresses (what a tab can dial) and each topic's publisher. */
function webPageConfig(addrs: string[], topics: { name: string; publisher?: PeerId }[]): WebPageConfig {
  return {
    addrs: addrs.filter((a) => a.includes('/ws/')),
    topics: topics.map(({ name, publisher }) => ({ name, ...(publisher === undefined ? {} : { publisher: publisher.toString() }) }))
  }
}

/** A registry of this node's own (not prom-client's global one), and libp2p's metrics written to it. */
async function nodeMetrics() {
  const [{ prometheusMetrics }, { Registry }] = await Promise.all([import('@libp2p/prometheus-metrics'), import('prom-client')])
  const registry = new Registry()
  return { registry, libp2p: prometheusMetrics({ registry }) }
}
