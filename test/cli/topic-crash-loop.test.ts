import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { topicRoot } from '../helpers/topic-data.js'
import { useBuiltCli } from './cli-harness.js'
import { parseJson, withTimeout } from './crash-loop.js'
import { askedAgain, expectConsistentStore, interruptAt, startTopicSync, TOPIC, topicSource } from './topic-runs.js'

const COUNT = 20_000
const KILLS = 3
/** Each contents request waits this long on the server: a loopback download then lasts long enough to aim at. */
const SERVE_DELAY_MS = 5
const RUN_TIMEOUT_MS = 20_000

// The `--topic` counterpart of crash-loop.test.ts: a kill at any moment leaves a consistent store, loses no
// committed item, and the next run asks only for what is not stored.
describe('dsfg sync --topic SIGKILLed at seeded moments', () => {
  const cli = useBuiltCli('dsfg-topic-crash-')

  it(`keeps a consistent store through ${KILLS} kills, loses nothing, and the last run fetches only the rest`, async () => {
    const source = await topicSource(41, COUNT, SERVE_DELAY_MS)
    try {
      const data = join(cli.work, 'client')
      const prng = new Prng(41)
      let head = -1
      for (let k = 0; k < KILLS; k++) {
        const run = await startTopicSync(cli.bin, source, data, RUN_TIMEOUT_MS)
        // Aimed by progress, not by wall time: once the run has asked for a seeded 10-60 % of the items left.
        const aim = Math.max(1, Math.round((COUNT - 1 - head) * (0.1 + prng.int(501) / 1000)))
        const { signal } = await interruptAt(run, aim, 'SIGKILL', RUN_TIMEOUT_MS)
        expect(signal).toBe('SIGKILL')
        // Resumed from the store the kill before left: nothing stored was asked for again.
        expect(askedAgain(run.asked(), head), `run ${k + 1} asked again for stored items`).toBe(0)
        const now = await expectConsistentStore(data, source)
        expect(now, `kill ${k + 1} lost items`).toBeGreaterThanOrEqual(head)
        head = now
      }
      // At least one kill left committed items to resume from.
      expect(head).toBeGreaterThanOrEqual(0)

      const final = await startTopicSync(cli.bin, source, data, RUN_TIMEOUT_MS)
      const { code } = await withTimeout(final.exited, RUN_TIMEOUT_MS + 5_000, 'the final run to end')
      expect(code, final.stderr()).toBe(0)
      expect(parseJson(final.stdout())).toMatchObject({
        topic: TOPIC,
        head: COUNT - 1,
        fetched: COUNT - 1 - head,
        root: toHex(topicRoot(source.items.map((item) => item.data))),
        verified: true
      })
      expect(askedAgain(final.asked(), head)).toBe(0)
      expect(await expectConsistentStore(data, source)).toBe(COUNT - 1)
    } finally {
      await source.stop()
    }
  }, 120_000)
})
