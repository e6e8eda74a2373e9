import { InvalidInputError } from '../../errors.js'
import { MAX_ITEM_BYTES } from '../../constants.js'
import { openStore } from '../../store/open-store.js'
import { recordSignedCheckpoint } from '../../topic/checkpoint-record.js'
import { TopicStore } from '../../topic/topic-store.js'
import { nodeKeyFor } from '../node-key.js'
import { fromHex, toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { DATA_DESCRIPTION, numberFlag } from '../flags.js'
import { inputName, readJsonLines, writeJson } from '../io.js'

/** Items appended per store batch while publishing a file. */
const PUBLISH_CHUNK = 4096

/** One `{"data":"0x…"}` line as item bytes. */
export function parseItemLine(json: unknown, where: string): Uint8Array {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidInputError(`${where}: expected an object {"data":"0x…"}`)
  }
  const record = json as Record<string, unknown>
  for (const field of Object.keys(record)) {
    if (field !== 'data') throw new InvalidInputError(`${where}: unknown field ${JSON.stringify(field)}`)
  }
  if (!('data' in record)) throw new InvalidInputError(`${where}: missing "data"`)
  const data = fromHex(record['data'] as string, `${where}: data`)
  if (data.length === 0 || data.length > MAX_ITEM_BYTES) {
    throw new InvalidInputError(`${where}: item must be 1 to ${MAX_ITEM_BYTES} bytes`)
  }
  return data
}

export const publishCommand = defineCommand({
  name: 'publish',
  summary: 'append JSON lines {"data":"0x…"} to a topic and checkpoint them → {"head","checkpoint"}',
  description: [
    'Appends each line {"data":"0x…"} of FILE as the next item of --topic in --data (numbers from the current',
    'head + 1), commits them to the topic trie, and records a checkpoint (head, root), signed with the node key',
    'of --data (the record `dsfg serve` hands to peers). Reads and checks the whole input before the store is',
    'touched. Prints {"head":N,"checkpoint":{"number":N,"root":"0x…"},"publisher":"<peer id>"}.',
    'A running `dsfg serve` on the same store is not notified: publish while the store is not served.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    topic: { type: 'string', value: 'T', required: true, description: 'topic name' }
  },
  positionals: [{ name: 'FILE', description: 'JSON lines {"data":"0x…"}, or - for standard input' }],
  async run({ options, positionals }, io) {
    const file = positionals[0]!
    const name = inputName(file)
    const items: Uint8Array[] = []
    for await (const { line, value } of readJsonLines(file, { stdin: io.stdin })) {
      items.push(parseItemLine(value, `${name} line ${line}`))
    }
    const store = await openStore(options.data)
    try {
      const topics = new TopicStore(store)
      for (let i = 0; i < items.length; i += PUBLISH_CHUNK) {
        await topics.appendMany(options.topic, items.slice(i, i + PUBLISH_CHUNK))
      }
      // Signed with this directory's node key: a `serve` of it hands the record to every peer that asks, and a
      // joiner given `--publisher <this peer id>` trusts nothing else. (`:memory:` has no lasting key to sign with.)
      const key = await nodeKeyFor(options.data)
      const record = key === undefined ? null : await recordSignedCheckpoint(topics, options.topic, key)
      const checkpoint = record?.checkpoint ?? (key === undefined ? await topics.checkpoint(options.topic) : null)
      const publisher = record?.signer.toString() ?? null
      await writeJson(io.stdout, {
        head: await topics.head(options.topic),
        checkpoint: checkpoint === null ? null : { number: checkpoint.number, root: toHex(checkpoint.root) },
        publisher
      })
    } finally {
      await store.close()
    }
  }
})

export const itemsCommand = defineCommand({
  name: 'items',
  summary: 'print a topic\'s items as JSON lines {"n","data"} in order',
  description: [
    'Prints the items of --topic held in --data, from --from (default 0) to --to (default the head), one JSON',
    'line {"n":N,"data":"0x…"} each, in order.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    topic: { type: 'string', value: 'T', required: true, description: 'topic name' },
    from: { type: 'string', value: 'N', description: 'first item number (default 0)' },
    to: { type: 'string', value: 'N', description: 'last item number (default the head)' }
  },
  async run({ options }, io) {
    const from = numberFlag(options.from, '--from') ?? 0
    const requestedTo = numberFlag(options.to, '--to')
    const store = await openStore(options.data, { mode: 'read' })
    try {
      const topics = new TopicStore(store)
      const head = await topics.head(options.topic)
      const to = Math.min(requestedTo ?? head, head)
      for (let n = from; n <= to; n += 256) {
        const chunk = await topics.getContents(options.topic, n, Math.min(256, to - n + 1))
        for (const item of chunk) await writeJson(io.stdout, { n: item.n, data: toHex(item.data) })
      }
    } finally {
      await store.close()
    }
  }
})
