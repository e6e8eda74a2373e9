import { pathToFileURL } from 'node:url'
import { createDsfgNode, toHex } from 'dsfg'

/** A publisher writes `count` chat messages; a node that joins later catches up, verified, and checks the root. */
export async function main(count = 300): Promise<{ messages: string[]; root: string }> {
  const publisher = await createDsfgNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  const joiner = await createDsfgNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  try {
    const chat = publisher.services.dsfg.topic('chat')
    for (let i = 0; i < count; i++) await chat.publish(new TextEncoder().encode(`message ${i}`))
    await chat.checkpoint() // (head, root(head)), signed and announced on dsfg/chat/checkpoints

    await joiner.dial(publisher.getMultiaddrs()[0]!)
    // Gossip is taken from the publisher's signature only; downloads from any peer are checked, bad data penalised.
    const topic = joiner.services.dsfg.topic({ name: 'chat', publisher: publisher.peerId })
    topic.addEventListener('peer:penalised', (e) => console.warn('bad data from', e.detail.peer, e.detail.reason))
    const signal = AbortSignal.timeout(15_000) // bounds the whole catch-up
    const caughtUp = new AbortController()
    // Download what peers have in verified batches, then apply live gossip.
    const following = topic.follow({ signal: AbortSignal.any([signal, caughtUp.signal]) })
    const messages: string[] = []
    for await (const item of topic.items({ from: 0, signal })) {
      messages.push(new TextDecoder().decode(item.data)) // item.n is 0, 1, 2, …: in order, exactly once each
      if (messages.length === count) break
    }
    caughtUp.abort()
    await following
    const root = toHex(await topic.root())
    if (root !== toHex(await chat.root())) throw new Error('the joiner holds other items than the publisher')
    return { messages, root }
  } finally {
    await Promise.all([joiner.stop(), publisher.stop()])
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { messages, root } = await main()
  console.log(`caught up: ${messages.length} messages, the last "${messages.at(-1)}", root ${root}`)
}
