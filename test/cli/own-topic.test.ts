import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ForeignTopicError, publishersPath, recordPublisher, refuseForeignTopic, topicTrust } from '../../src/cli/own-topic.js'
import { PublishInput } from '../../src/cli/publish-input.js'
import { loadNodeKey } from '../../src/cli/node-key.js'
import { journalPath, PublishPendingError, pendingPublish, publishItems } from '../../src/cli/resumable-publish.js'
import { NodeKeyError, StoreError } from '../../src/errors.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import { recordSignedCheckpoint } from '../../src/topic/checkpoint-record.js'
import { TopicStore } from '../../src/topic/topic-store.js'

const items = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]

async function* iterate(list: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* list
}

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dsfg-own-topic-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('refuseForeignTopic', () => {
  let store: MemoryStore
  let topics: TopicStore
  let key: PrivateKey

  beforeEach(async () => {
    store = new MemoryStore()
    topics = new TopicStore(store)
    key = await generateKeyPair('Ed25519')
  })

  it('lets a topic go on under the key that signed its record, or an empty one start', async () => {
    await expect(refuseForeignTopic(store, 'news', key, dir)).resolves.toBeUndefined()
    await topics.appendMany('news', items)
    await recordSignedCheckpoint(topics, 'news', key)
    await expect(refuseForeignTopic(store, 'news', key, dir)).resolves.toBeUndefined()
  })

  it('refuses items with no record, unless the first publish to the topic left them and its journal says so', async () => {
    // Items synced under a quorum: no record, no journal.
    await topics.appendMany('news', items)
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(/holds 3 items that no checkpoint of this directory signs/)
    // A journal of these very items (the first publish, stopped before its checkpoint) finishes.
    const input = await PublishInput.survey(() => iterate(items))
    const genuine = { topic: 'news', from: 0, count: 3, digest: input.digest }
    await writeFile(journalPath(dir, 'news'), JSON.stringify(genuine))
    await expect(refuseForeignTopic(store, 'news', key, dir)).resolves.toBeUndefined()
    // A journal written by hand to claim them does not: another digest, fewer items, or a later start.
    for (const forged of [
      { ...genuine, digest: '00'.repeat(32) },
      { ...genuine, count: 1 },
      { ...genuine, from: 1, count: 2 },
      { ...genuine, topic: 'other' }
    ]) {
      await writeFile(journalPath(dir, 'news'), JSON.stringify(forged))
      await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toBeInstanceOf(ForeignTopicError)
    }
  })

  it('lets an interrupted first publish be run again: its journal covers more items than are stored', async () => {
    const more = [...items, Uint8Array.of(4), Uint8Array.of(5)]
    const input = await PublishInput.survey(() => iterate(more))
    await writeFile(journalPath(dir, 'news'), JSON.stringify({ topic: 'news', from: 0, count: more.length, digest: input.digest }))
    await topics.appendMany('news', items)
    await expect(refuseForeignTopic(store, 'news', key, dir)).resolves.toBeUndefined()
    await publishItems(topics, 'news', input, { journalDir: dir })
    expect(await topics.head('news')).toBe(4)
  })

  it('refuses a topic another key signed, and one a replaced key of this directory signed, saying which', async () => {
    await topics.appendMany('news', items)
    const old = await generateKeyPair('Ed25519')
    await recordSignedCheckpoint(topics, 'news', old)
    const oldId = peerIdFromPrivateKey(old).toString()
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(new RegExp(`holds the history ${oldId} signed`))
    await recordPublisher(dir, 'news', peerIdFromPrivateKey(old))
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(new RegExp(`was published with the key of ${oldId}, and .*node\\.key is now `))
  })

  it('reads the keys file before anything else: trims its lines, and refuses one that is damaged', async () => {
    await topics.appendMany('news', items)
    const old = await generateKeyPair('Ed25519')
    await recordSignedCheckpoint(topics, 'news', old)
    const oldId = peerIdFromPrivateKey(old).toString()
    // Written on another system: CRLF line ends and spaces still name the key.
    await writeFile(publishersPath(dir, 'news'), ` ${oldId}\r\n`)
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(/was published with the key of/)
    await writeFile(publishersPath(dir, 'news'), `${oldId}\ngarbage\n`)
    const damaged = refuseForeignTopic(store, 'news', key, dir)
    await expect(damaged).rejects.toBeInstanceOf(StoreError)
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(/the keys that published topic news, holds "garbage", not a peer id$/)
  })
})

describe('topicTrust of a topic whose store was lost', () => {
  it('keeps this key as its publisher when the keys file names it and no record is stored, unless a flag says otherwise', async () => {
    const key = await generateKeyPair('Ed25519')
    const self = peerIdFromPrivateKey(key)
    const store = new MemoryStore()
    const quorum = { trust: { quorum: 1 }, given: false }
    const trustOf = async (flags: typeof quorum) => (await topicTrust(store, 'news', flags, key, dir, 'sync')).trust
    // Not published from here: the flags' trust.
    expect(await trustOf(quorum)).toEqual({ quorum: 1 })
    await recordPublisher(dir, 'news', self)
    // Published from here, the store since lost: its key, even over items synced meanwhile with no record.
    const restored = await trustOf(quorum)
    expect('publisher' in restored && restored.publisher.equals(self)).toBe(true)
    await new TopicStore(store).appendMany('news', items)
    expect('publisher' in (await trustOf(quorum))).toBe(true)
    // A flag given is the user's call: nothing of the topic is stored under its key to lose.
    expect(await trustOf({ trust: { quorum: 2 }, given: true })).toEqual({ quorum: 2 })
    // Another key's directory: the flags' trust.
    expect(await topicTrust(store, 'news', quorum, await generateKeyPair('Ed25519'), dir, 'sync')).toMatchObject({ trust: { quorum: 1 }, own: false })
  })
})

describe('the keys file', () => {
  /** A store holding `news` with a record another key signed: deciding its trust reads the keys file. */
  async function followed(): Promise<MemoryStore> {
    const store = new MemoryStore()
    const topics = new TopicStore(store)
    await topics.appendMany('news', items)
    await recordSignedCheckpoint(topics, 'news', await generateKeyPair('Ed25519'))
    return store
  }
  const quorum = { trust: { quorum: 1 }, given: false }

  // Named pipes are a POSIX thing; Windows has none to put in the file's place.
  it.skipIf(process.platform === 'win32')('refuses a named pipe in its place at once, where reading it waited for ever', async () => {
    execFileSync('mkfifo', [publishersPath(dir, 'news')])
    const store = await followed()
    const key = await generateKeyPair('Ed25519')
    await expect(topicTrust(store, 'news', quorum, key, dir, 'serve')).rejects.toThrow(/the keys that published topic news, is not a regular file$/)
    // With no record stored (a lost store), the file is read too.
    await expect(topicTrust(new MemoryStore(), 'news', quorum, key, dir, 'sync')).rejects.toBeInstanceOf(StoreError)
    await expect(refuseForeignTopic(store, 'news', key, dir)).rejects.toThrow(/is not a regular file$/)
  })

  it('refuses one larger than 64 KiB without reading it', async () => {
    await writeFile(publishersPath(dir, 'news'), `${peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()}\n`.repeat(1300))
    await expect(topicTrust(await followed(), 'news', quorum, await generateKeyPair('Ed25519'), dir, 'serve')).rejects.toThrow(/is 68900 bytes, more than 65536$/)
  })
})

describe('the node key and a publish journal', () => {
  it.skipIf(process.platform === 'win32')('refuse a named pipe in their place at once, where reading one waited for ever', async () => {
    execFileSync('mkfifo', [join(dir, 'node.key'), journalPath(dir, 'news')])
    await expect(loadNodeKey(dir)).rejects.toThrow(new NodeKeyError(`the node key ${join(dir, 'node.key')} is not a regular file`))
    await expect(pendingPublish(dir, 'news')).rejects.toBeInstanceOf(PublishPendingError)
    await expect(pendingPublish(dir, 'news')).rejects.toThrow(/\.pending is not a regular file \(remove it/)
  })
})

describe('a file that reports no size', () => {
  // /proc/kallsyms is a regular file of size 0 that reads on for megabytes.
  it.skipIf(!existsSync('/proc/kallsyms'))('is read only to the bound, and refused past it', async () => {
    await symlink('/proc/kallsyms', publishersPath(dir, 'news'))
    await symlink('/proc/kallsyms', join(dir, 'node.key'))
    const followed = new MemoryStore()
    await new TopicStore(followed).appendMany('news', items)
    await recordSignedCheckpoint(new TopicStore(followed), 'news', await generateKeyPair('Ed25519'))
    await expect(topicTrust(followed, 'news', { trust: { quorum: 1 }, given: false }, undefined, dir, 'serve')).rejects.toThrow(
      /the keys that published topic news, is more than 65536 bytes$/
    )
    await expect(loadNodeKey(dir)).rejects.toThrow(/is more than 65536 bytes$/)
  })
})
