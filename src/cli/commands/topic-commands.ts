import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { MEMORY_STORE_SPEC, openStore } from '../../store/open-store.js'
import { recordSignedCheckpoint } from '../../topic/checkpoint-record.js'
import { TopicStore } from '../../topic/topic-store.js'
import { NODE_KEY_FILE, nodeKeyFor } from '../node-key.js'
import { recordPublisher, refuseForeignTopic } from '../own-topic.js'
import { toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { DATA_DESCRIPTION, numberFlag, topicFlag } from '../flags.js'
import { inputName, writeJson } from '../io.js'
import { ProgressReporter } from '../progress.js'
import { PublishInput } from '../publish-input.js'
import { itemSource } from '../publish-source.js'
import { finishPublish, publishItems } from '../resumable-publish.js'
import { terminationSignal } from '../signals.js'

export const publishCommand = defineCommand({
  name: 'publish',
  summary: SUMMARIES.publish,
  description: [
    'Appends each line {"data":"0x…"} of FILE as the next item of --topic in --data (numbers from the current',
    'head + 1), commits them to the topic trie, and records a checkpoint (head, root), signed with the node key',
    'of --data (the record `dsfg serve` hands to peers). Reads and checks the whole input before the store is',
    'touched (a line longer than a largest item needs is an error), then reads it again a batch at a time to',
    'store it: memory holds a batch, not the input (standard input is copied to a temporary file for that).',
    'Progress on stderr: items published of the total.',
    'Prints {"head":N,"checkpoint":{"number":N,"root":"0x…"},"publisher":"<peer id>"}.',
    'A publish that stops partway (killed, interrupted, a failed write) leaves DIR/publish-<id>.pending: running',
    'it again with the same input appends only the items not stored yet, so each is published once, in order.',
    'Until then a publish of other input to the topic is refused. Without the file, the same input published',
    'twice is appended twice. It goes on only under the key that signed the topic\'s stored checkpoint: a topic whose',
    'history another publisher signed (one DIR follows), items synced with no checkpoint, and a topic published under',
    'a node.key since replaced are refused (exit 1).',
    'A running `dsfg serve` on the same store is not notified: publish while the store is not served.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    topic: { type: 'string', value: 'T', required: true, description: 'topic name' }
  },
  positionals: [{ name: 'FILE', description: 'JSON lines {"data":"0x…"}, or - for standard input' }],
  async run({ options, positionals }, io) {
    topicFlag(options.topic)
    const file = positionals[0]!
    const name = inputName(file)
    const stop = terminationSignal()
    const progress = new ProgressReporter(io.stderr)
    const source = itemSource(file, { stdin: io.stdin, signal: stop.signal })
    try {
      const input = await PublishInput.survey(source.read, { name })
      const store = await openStore(options.data)
      try {
        const topics = new TopicStore(store)
        // Checked with the key as it is: a refused publish leaves no new node.key behind.
        const kept = options.data === MEMORY_STORE_SPEC || !existsSync(join(options.data, NODE_KEY_FILE)) ? undefined : await nodeKeyFor(options.data)
        await refuseForeignTopic(store, options.topic, kept, options.data)
        const key = kept ?? (await nodeKeyFor(options.data))
        // The journal lives beside the store; `:memory:` keeps nothing to resume.
        const journalDir = options.data === MEMORY_STORE_SPEC ? undefined : options.data
        await publishItems(topics, options.topic, input, {
          journalDir,
          signal: stop.signal,
          onProgress: (published, total) => progress.update({ phase: 'publish', unit: 'items', done: published, total })
        })
        // Signed with this directory's node key: a `serve` of it hands the record to every peer that asks, and a
        // joiner given `--publisher <this peer id>` trusts nothing else. (`:memory:` has no lasting key to sign with.)
        const record = key === undefined ? null : await recordSignedCheckpoint(topics, options.topic, key)
        const checkpoint = record?.checkpoint ?? (key === undefined ? await topics.checkpoint(options.topic) : null)
        // Before the journal goes: a publish killed between the two is finished by its next run, which records it.
        if (record !== null) await recordPublisher(options.data, options.topic, record.signer)
        await finishPublish(journalDir, options.topic)
        const publisher = record?.signer.toString() ?? null
        progress.finish()
        await writeJson(io.stdout, {
          head: await topics.head(options.topic),
          checkpoint: checkpoint === null ? null : { number: checkpoint.number, root: toHex(checkpoint.root) },
          publisher
        })
      } finally {
        await store.close()
      }
    } catch (err) {
      // A stop shows as whatever the store made of the abort: the cause to report is the interruption.
      if (stop.signal.aborted) throw stop.signal.reason
      throw err
    } finally {
      progress.finish()
      stop.dispose()
      await source.close()
    }
  }
})

export const itemsCommand = defineCommand({
  name: 'items',
  summary: SUMMARIES.items,
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
    topicFlag(options.topic)
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
