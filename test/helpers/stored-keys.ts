import { ClassicLevel } from 'classic-level'
import { toHex } from '../../src/util/hex.js'

/**
 * Every 32-byte key (a trie node's hash) in the LevelDB at `path`, as hex, read straight from the database
 * rather than by walking a trie. The database must be closed: LevelDB allows one open handle per directory.
 */
export async function storedNodeKeys(path: string): Promise<Set<string>> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open({ createIfMissing: false })
  try {
    const keys = new Set<string>()
    for await (const key of db.keys()) if (key.length === 32) keys.add(toHex(key))
    return keys
  } finally {
    await db.close()
  }
}
