import { InvalidInputError } from '../../errors.js'
import { openStore } from '../../store/open-store.js'
import { importSorted } from '../../trie/stack-trie.js'
import { fromHex, toHex } from '../../util/hex.js'
import { defineCommand } from '../command.js'
import { EntrySorter } from '../entry-sorter.js'
import { DATA_DESCRIPTION, SECURE_DESCRIPTION, trieKey } from '../flags.js'
import { inputName, readJsonLines, writeJson } from '../io.js'

/** Entries between two progress lines on stderr; smaller inputs finish before anyone would want one. */
const PROGRESS_EVERY = 1_000_000

const ENTRY_FIELDS: ReadonlySet<string> = new Set(['key', 'value'])

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
  return [key, value]
}

export const importCommand = defineCommand({
  name: 'import',
  summary: 'build a trie from JSON lines {"key":"0x…","value":"0x…"} → {"root","keys","nodes"}',
  description: [
    'Reads JSON lines {"key":"0x…","value":"0x…"} in any order, builds their Merkle-Patricia trie bottom-up',
    'and stores its nodes in --data. A key given more than once keeps its last value. Values must not be',
    'empty. The whole input is read and checked before the store is touched.',
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
    const progress = (message: string): void => {
      io.stderr.write(`dsfg import: ${message}\n`)
    }

    // Collect first, then sort: a bottom-up build needs ascending keys, and input files rarely are sorted
    // (under --secure never, since hashing scatters the keys).
    const sorter = new EntrySorter()
    for await (const { line, value } of readJsonLines(file, { stdin: io.stdin })) {
      const [key, data] = parseEntry(value, `${name} line ${line}`)
      sorter.add(trieKey(key, options.secure), data)
      if (sorter.added % PROGRESS_EVERY === 0) progress(`read ${sorter.added} entries`)
    }
    const large = sorter.added >= PROGRESS_EVERY
    if (large) progress(`sorting ${sorter.added} entries`)

    const store = await openStore(options.data)
    try {
      const result = await importSorted(store, sorter.sorted())
      if (large) progress(`stored ${result.nodes} nodes`)
      await writeJson(io.stdout, { root: toHex(result.root), keys: result.keys, nodes: result.nodes })
    } finally {
      await store.close()
    }
  }
})
