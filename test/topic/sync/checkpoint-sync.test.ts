import { describe, expect, it } from 'vitest'
import { TopicTrieError } from '../../../src/errors.js'
import { CheckpointSync } from '../../../src/topic/sync/checkpoint-sync.js'
import type { TrieCheckpoint } from '../../../src/topic/sync/target.js'

const cp = (number: number): TrieCheckpoint => ({ number, root: Uint8Array.of(number & 0xff, 1) })

/** A trie sync the test ends by hand, at whichever root it likes. */
function world(options: { adoptFails?: Error } = {}) {
  let finish!: (root: Uint8Array) => void
  let fail!: (error: Error) => void
  const retargets: number[] = []
  const adopted: number[] = []
  let ended = false
  let signal: AbortSignal | undefined
  const sync = new CheckpointSync({
    checkpoint: cp(100),
    syncTrie: (_root, options) => {
      signal = options.signal
      return {
        done: new Promise((resolve, reject) => {
          finish = (root) => {
            ended = true
            resolve({ root })
          }
          fail = reject
        }),
        retarget: (root) => {
          if (ended) throw new Error('the sync has ended')
          retargets.push(root[0]!)
        }
      }
    },
    adopt: async (checkpoint) => {
      if (options.adoptFails !== undefined) throw options.adoptFails
      adopted.push(checkpoint.number)
    },
    signal: new AbortController().signal
  })
  return { sync, finish: (root: Uint8Array) => finish(root), fail: (e: Error) => fail(e), retargets, adopted, signal: () => signal! }
}

describe('CheckpointSync', () => {
  it('adopts the checkpoint whose root the trie sync ended at, after re-targets', async () => {
    const w = world()
    expect(w.sync.retarget(cp(200))).toBe(true)
    expect(w.sync.retarget(cp(300))).toBe(true)
    expect(w.sync.checkpoint).toEqual(cp(300))
    // The sync finished 200's root before it took the last re-target.
    w.finish(cp(200).root)
    expect(await w.sync.settled).toEqual({ kind: 'adopted', checkpoint: cp(200) })
    expect(w.adopted).toEqual([200])
    expect(w.retargets).toEqual([200 & 0xff, 300 & 0xff])
  })

  it('takes no re-target once the trie sync has ended', async () => {
    const w = world()
    w.finish(cp(100).root)
    await w.sync.settled
    expect(w.sync.retarget(cp(900))).toBe(false)
    expect(w.sync.checkpoint).toEqual(cp(100))
  })

  it('settles as failed (never rejects) when the trie sync fails, ends at a root it was not given, or the adoption fails', async () => {
    const failing = world()
    failing.fail(new Error('no peers'))
    const outcome = await failing.sync.settled
    expect(outcome.kind).toBe('failed')

    const stray = world()
    stray.finish(Uint8Array.of(7, 7))
    const strayOutcome = await stray.sync.settled
    expect(strayOutcome.kind === 'failed' && strayOutcome.error instanceof TopicTrieError).toBe(true)
    expect(stray.adopted).toEqual([])

    const refused = world({ adoptFails: new TopicTrieError('the leaves are not items') })
    refused.finish(cp(100).root)
    expect(await refused.sync.settled).toMatchObject({ kind: 'failed', checkpoint: cp(100) })
    // The trie sync is told to stop.
    expect(refused.signal().aborted).toBe(true)
  })
})
