import { InvalidInputError } from '../../errors.js'
import type { KVStore } from '../../store/kv-store.js'
import { openStore } from '../../store/open-store.js'
import { MAX_NODE_BYTES } from '../../trie/node.js'
import { importSorted } from '../../trie/stack-trie.js'
import { fromHex, toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { SUMMARIES } from './index.js'
import { EntrySorter, type SortedEntry } from '../entry-sorter.js'
import { DATA_DESCRIPTION, SECURE_DESCRIPTION, trieKey } from '../flags.js'
import { inputName, inputSize, readJsonLines, writeJson } from '../io.js'
import { terminationSignal } from '../signals.js'
import { ProgressReporter } from '../progress.js'

const ENTRY_FIELDS: ReadonlySet<string> = new Set(['key', 'value'])

/**
 * The longest value that may fit a trie node of `MAX_NODE_BYTES`: a value over 64 KiB in a leaf takes 4 bytes of
 * RLP header, the leaf's list another 4 and its path at least 1. A longer value is refused while the input is
 * read; one that fits here but not in its node (with its path, or in a branch) fails the build (`importSorted`).
 */
const MAX_VALUE_BYTES = MAX_NODE_BYTES - 9

/** One input line as `[key, value]` bytes; `where` ("FILE line N") prefixes every error. */
export function parseEntry(json: unknown, where: string): [Uint8Array, Uint8Array] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidInputError(`${where}: expected an object {"key":"0x…","value":"0x…"}`)
  }
  const record = json as Record<string, unknown>
  for (const field of Object.keys(record)) {
    if (!ENTRY_FIELDS.has(field)) throw new InvalidInputError(`${where}: unknown field ${JSON.stringify(field)}`)
  }
  for (const field of ENTRY_FIELDS) {
    if (!(field in record)) throw new InvalidInputError(`${where}: missing ${JSON.stringify(field)}`)
  }
  const key = fromHex(record['key'] as string, `${where}: key`)
  const value = fromHex(record['value'] as string, `${where}: value`)
  // In a Merkle-Patricia trie an empty value is how a key is deleted, so importing one would be ambiguous.
  if (value.length === 0) throw new InvalidInputError(`${where}: value is empty (leave the key out instead)`)
  if (value.length > MAX_VALUE_BYTES) {
    throw new InvalidInputError(
      `${where}: value of ${value.length} bytes is too large: its trie node would be over the ${MAX_NODE_BYTES} bytes a peer accepts`
    )
  }
  return [key, value]
}

export const importCommand = defineCommand({
  name: 'import',
  summary: SUMMARIES.import,
  description: [
    'Reads JSON lines {"key":"0x…","value":"0x…"} in any order, builds their Merkle-Patricia trie bottom-up',
    'and stores its nodes in --data. A key given more than once keeps its last value. Values must not be',
    'empty, nor so large that their trie node would be over 1 MiB, which no peer accepts (a value over 1 MiB less',
    '9 bytes is refused while reading; a node over 1 MiB fails the build). The whole input is read and checked',
    'before the store is touched; a line over 16 MiB is an error.',
    'Progress on stderr (a line redrawn on a terminal, JSON lines otherwise): entries and bytes read, with a',
    'percentage when FILE is a regular file, then the sorted entries stored of the total, with the nodes written.',
    'Prints {"root":"0x…","keys":N,"nodes":N}: the root hash, the number of distinct keys and of nodes stored.'
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'DIR', required: true, description: DATA_DESCRIPTION },
    secure: { type: 'boolean', description: SECURE_DESCRIPTION }
  },
  positionals: [{ name: 'FILE', description: 'JSON lines to import, or - for standard input' }],
  async run({ options, positionals }, io) {
    const file = positionals[0]!
    const name = inputName(file)
    const progress = new ProgressReporter(io.stderr)
    // The input's size gives reading a percentage (a regular file); of standard input only the bytes read are known.
    const bytesTotal = await inputSize(file)
    // SIGINT or SIGTERM ends the import between entries with one line and 130 or 143; the nodes stored so far
    // are harmless (a trie's nodes are keyed by their hash), and an import of the same input builds it whole.
    const stop = terminationSignal()
    const checkStop = (): void => {
      if (stop.signal.aborted) throw stop.signal.reason
    }

    try {
      // Collect first, then sort: a bottom-up build needs ascending keys, and input files rarely are sorted
      // (under --secure never, since hashing scatters the keys).
      const sorter = new EntrySorter()
      for await (const { line, value, bytes } of readJsonLines(file, { stdin: io.stdin, signal: stop.signal })) {
        const [key, data] = parseEntry(value, `${name} line ${line}`)
        sorter.add(trieKey(key, options.secure), data)
        progress.update({ phase: 'read', unit: 'entries', done: sorter.added, bytes, ...(bytesTotal === undefined ? {} : { bytesTotal }) })
      }

      const store = await openStore(options.data)
      try {
        // Storing goes through the sorted entries once: how many of them are behind us is the percentage.
        let nodes = 0
        const counted: KVStore = {
          get: (key) => store.get(key),
          getMany: (keys) => store.getMany(keys),
          put: (key, value) => store.put(key, value),
          del: (key) => store.del(key),
          batch: async (ops) => {
            await store.batch(ops)
            nodes += ops.length
          },
          close: () => store.close()
        }
        const total = sorter.added
        const sorted = sorter.sorted()
        const entries = function* (): Generator<SortedEntry> {
          for (const entry of sorted) {
            checkStop()
            yield entry
            progress.update({ phase: 'store', unit: 'entries', done: sorter.consumed, total, counts: { nodes } })
          }
        }
        const result = await importSorted(counted, entries())
        checkStop()
        // The last batch of nodes goes out after the last entry.
        progress.update({ phase: 'store', unit: 'entries', done: total, total, counts: { nodes } })
        progress.finish()
        await writeJson(io.stdout, { root: toHex(result.root), keys: result.keys, nodes: result.nodes })
      } finally {
        await store.close()
      }
    } finally {
      stop.dispose()
      // Ends the terminal's progress line before the error (and is done already before the summary).
      progress.finish()
    }
  }
})
