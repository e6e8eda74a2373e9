import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { MAX_FRAME_BYTES } from '../../src/constants.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { until } from '../helpers/wait.js'
import { budgetedServer, connectedAttackers, openSlowRead } from '../net/half-open-attack.js'
import { expectOneLineError, runCli, serveCli, useBuiltCli, writeItemLines } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

/** `--wait` in these tests: what `sync --topic` may spend without progress before it gives up. */
const WAIT_S = 3
/**
 * How long after `--wait` the command may take to exit: node start, dials, the watchdog's period and the node's
 * stop, on a loaded 2-vCPU machine. Before the fix, both syncs ran on past 20 s (one until killed).
 */
const SLACK_MS = 6_000

/** Runs `sync` and returns its result and how long it took. */
async function timedSync(bin: string, args: string[]): Promise<{ result: Awaited<ReturnType<typeof runCli>>; ms: number }> {
  const started = Date.now()
  const result = await runCli(bin, ['sync', '--data', ':memory:', ...args, '--wait', String(WAIT_S)], { timeoutMs: 30_000 })
  return { result, ms: Date.now() - started }
}

describe('dsfg sync --topic gives up after --wait without progress, saying why (issue 14)', () => {
  const cli = useBuiltCli('dsfg-sync-no-progress-')
  const running: { stop(): unknown }[] = []
  afterAll(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()))
  })

  it('a quorum of 2 between an honest server and a forger of another history', async () => {
    // The outside tester's setup: the forger published other items under the same topic with its own key.
    for (const [name, seed] of [['honest', 1], ['forged', 2]] as const) {
      const prng = new Prng(seed)
      const input = join(cli.work, `${name}.jsonl`)
      await writeItemLines(input, Array.from({ length: 200 }, () => toHex(prng.bytes(1 + prng.int(40)))))
      const published = await runCli(cli.bin, ['publish', '--data', join(cli.work, name), '--topic', 'news', input])
      expect(published.code, published.stderr).toBe(0)
    }
    const honest = await serveCli(cli.bin, ['--data', join(cli.work, 'honest'), '--topic', 'news'])
    running.push(honest)
    const forger = await serveCli(cli.bin, ['--data', join(cli.work, 'forged'), '--topic', 'news'])
    running.push(forger)
    const peers = ['--peer', forger.info.addrs[0]!, '--peer', honest.info.addrs[0]!]

    const { result, ms } = await timedSync(cli.bin, [...peers, '--topic', 'news', '--quorum', '2'])
    expectOneLineError(result, 1, /^dsfg: topic "news": 2 peers report different histories .*; no 2 agree \(nothing verified for 3 s\)$/)
    expect(ms).toBeLessThan(WAIT_S * 1000 + SLACK_MS)

    // Each alone is a quorum of 1 and syncs: the watchdog cuts a sync that verifies nothing, not this one.
    const alone = await timedSync(cli.bin, ['--peer', honest.info.addrs[0]!, '--topic', 'news', '--quorum', '1'])
    expect(alone.result.code, alone.result.stderr).toBe(0)
    expect(JSON.parse(alone.result.stdout)).toMatchObject({ head: 199, verified: true })
  })

  it('a server whose reply budget slow readers hold answers busy', async () => {
    // As rate-limited-resume.e2e: a budget of 3 peers' shares of two full replies, held by 3 slow readers until
    // a write deadline past the test's end; a contents reply is refused RATE_LIMITED meanwhile (status replies,
    // small, still fit: the joiner knows what the server holds).
    const perPeer = 2 * MAX_FRAME_BYTES
    const server = await budgetedServer({
      topic: 'big',
      count: 96,
      itemBytes: 64 * 1024,
      seed: 3,
      deadlineMs: 30_000,
      budget: 3 * perPeer,
      perPeer
    })
    running.push(server)
    const attackers = await connectedAttackers(3, server.getMultiaddrs()[0]!)
    running.push(...attackers)
    await Promise.all(
      attackers.flatMap((a, i) => [0, 1].map((j) => openSlowRead(a.getConnections(server.peerId)[0]!, 'big', (i * 2 + j) * 8)))
    )
    await until(() => server.services.dsfg.replyStats().inFlight > 3 * perPeer - MAX_FRAME_BYTES / 2, 'the slow readers to fill the budget')

    const { result, ms } = await timedSync(cli.bin, ['--peer', server.getMultiaddrs()[0]!.toString(), '--topic', 'big'])
    expectOneLineError(result, 1, /^dsfg: topic "big": nothing verified for 3 s: the dialled peer serving it answered busy \(RATE_LIMITED\)$/)
    expect(ms).toBeLessThan(WAIT_S * 1000 + SLACK_MS)
    expect(server.services.dsfg.replyStats().refused).toBeGreaterThan(0)
  })
})
