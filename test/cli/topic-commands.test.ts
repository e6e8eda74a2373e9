import { access, cp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { publishersPath } from '../../src/cli/own-topic.js'
import { journalPath } from '../../src/cli/resumable-publish.js'
import { toHex } from '../../src/util/hex.js'
import { Prng } from '../../src/util/prng.js'
import { expectOneLineError, runCli, serveCli, useBuiltCli, writeItemLines } from './cli-harness.js'

vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-topic-cli-')

describe('dsfg publish, serve --topic, sync --topic, items', () => {
  it('reproduces a topic between processes, verified, in order', async () => {
    const prng = new Prng(4)
    const items = Array.from({ length: 3000 }, () => toHex(prng.bytes(1 + prng.int(100))))
    const input = join(cli.work, 'items.jsonl')
    await writeItemLines(input, items)
    const source = join(cli.work, 'source')
    const published = await runCli(cli.bin, ['publish', '--data', source, '--topic', 'news', input])
    expect(published.code).toBe(0)
    const { head, checkpoint } = JSON.parse(published.stdout) as { head: number; checkpoint: { number: number; root: string } }
    expect(head).toBe(2999)
    expect(checkpoint.number).toBe(2999)

    const server = await serveCli(cli.bin, ['--data', source, '--topic', 'news'])
    expect(server.info.topics).toEqual(['news'])
    // One server cannot make a quorum of two: the sync gives up after its wait for peers instead of hanging. It
    // spends that time waiting, so it runs beside the two syncs below, not after them.
    const short = runCli(
      cli.bin,
      ['sync', '--data', ':memory:', '--peer', server.info.addrs[0]!, '--topic', 'news', '--quorum', '2', '--wait', '4'],
      { timeoutMs: 60_000 }
    )
    const target = join(cli.work, 'target')
    const synced = await runCli(cli.bin, ['sync', '--data', target, '--peer', server.info.addrs[0]!, '--topic', 'news'], {
      timeoutMs: 60_000
    })
    expect(synced.stderr).not.toMatch(/ {4}at /)
    expect(synced.code).toBe(0)
    expect(JSON.parse(synced.stdout)).toMatchObject({
      topic: 'news',
      trust: 'quorum:1',
      head: 2999,
      items: 3000,
      root: checkpoint.root,
      verified: true
    })
    // The server is the publisher here: it published the items from the store it serves, as its own peer id.
    const trusted = await runCli(
      cli.bin,
      ['sync', '--data', ':memory:', '--peer', server.info.addrs[0]!, '--topic', 'news', '--publisher', server.info.peerId],
      { timeoutMs: 60_000 }
    )
    expect(trusted.code, trusted.stderr).toBe(0)
    expect(JSON.parse(trusted.stdout)).toMatchObject({ topic: 'news', trust: 'publisher', head: 2999, root: checkpoint.root, verified: true })
    const shortResult = await short
    expect(shortResult.code).toBe(1)
    expect(shortResult.stderr.trim().split('\n').at(-1)).toBe('dsfg: topic "news": only 1 dialled peer serves it, --quorum needs 2')
    expect(await server.stop()).toBe(0)

    const listed = await runCli(cli.bin, ['items', '--data', target, '--topic', 'news'])
    expect(listed.code).toBe(0)
    const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { n: number; data: string })
    expect(lines.map((l) => l.n)).toEqual(items.map((_d, i) => i))
    expect(lines.map((l) => l.data)).toEqual(items)
    const window = await runCli(cli.bin, ['items', '--data', target, '--topic', 'news', '--from', '10', '--to', '12'])
    expect(window.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([10, 11, 12])
    // Synced under a quorum, where no record is kept: a publish would sign the peers' items as this node's.
    const onto = await runCli(cli.bin, ['publish', '--data', target, '--topic', 'news', input])
    expectOneLineError(onto, 1, /^dsfg: topic news in .* holds 3000 items that no checkpoint of this directory signs \(synced from peers\?\)/)
    expect((await runCli(cli.bin, ['items', '--data', target, '--topic', 'news'])).stdout.trim().split('\n')).toHaveLength(3000)
  })

  it('sync --publisher reproduces the publisher\'s items exactly beside a forging server, in either --peer order', async () => {
    const write = async (name: string, seed: number): Promise<string[]> => {
      const prng = new Prng(seed)
      const datas = Array.from({ length: 2000 }, () => toHex(prng.bytes(1 + prng.int(60))))
      await writeItemLines(join(cli.work, name), datas)
      return datas
    }
    const items = await write('honest.jsonl', 7)
    await write('forged.jsonl', 8)
    // The forger publishes a history of its own under the same topic name, signed with its own key, and more
    // of it: a higher head and a higher checkpoint than the publisher's.
    const honestData = join(cli.work, 'honest')
    const forgedData = join(cli.work, 'forged')
    // The two stores are separate: the honest publish runs beside the forger's two.
    const publishForged = async (): Promise<void> => {
      for (let i = 0; i < 2; i++) {
        const forged = await runCli(cli.bin, ['publish', '--data', forgedData, '--topic', 'news', join(cli.work, 'forged.jsonl')])
        expect(forged.code, forged.stderr).toBe(0)
      }
    }
    const [published] = await Promise.all([
      runCli(cli.bin, ['publish', '--data', honestData, '--topic', 'news', join(cli.work, 'honest.jsonl')]),
      publishForged()
    ])
    expect(published.code, published.stderr).toBe(0)
    const { publisher, checkpoint } = JSON.parse(published.stdout) as { publisher: string; checkpoint: { root: string } }
    const [honest, forger] = await Promise.all([
      serveCli(cli.bin, ['--data', honestData, '--topic', 'news']),
      serveCli(cli.bin, ['--data', forgedData, '--topic', 'news'])
    ])
    expect(honest.info.peerId).toBe(publisher)
    try {
      // The forger alone: nothing it has is signed by the publisher, so the sync fails with one line, never
      // claiming success, and stores nothing. It spends its --wait waiting, so it runs beside the syncs below.
      const alone = join(cli.work, 'joiner-forger-only')
      const lonelyRun = runCli(
        cli.bin,
        ['sync', '--data', alone, '--topic', 'news', '--publisher', publisher, '--peer', forger.info.addrs[0]!, '--wait', '2'],
        { timeoutMs: 60_000 }
      )
      for (const peers of [
        [forger.info.addrs[0]!, honest.info.addrs[0]!],
        [honest.info.addrs[0]!, forger.info.addrs[0]!]
      ]) {
        const target = join(cli.work, `joiner-${peers[0] === honest.info.addrs[0] ? 'honest-first' : 'forger-first'}`)
        const args = ['sync', '--data', target, '--topic', 'news', '--publisher', publisher, ...peers.flatMap((p) => ['--peer', p])]
        const synced = await runCli(cli.bin, args, { timeoutMs: 60_000 })
        expect(synced.code, synced.stderr).toBe(0)
        expect(JSON.parse(synced.stdout)).toMatchObject({ trust: 'publisher', head: 1999, root: checkpoint.root, verified: true })
        const listed = await runCli(cli.bin, ['items', '--data', target, '--topic', 'news'])
        expect(listed.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { data: string }).data)).toEqual(items)
      }
      const lonely = await lonelyRun
      expectOneLineError(lonely, 1, /^dsfg: topic "news": no dialled peer holds a checkpoint signed by \S+$/)
      expect(lonely.stdout).toBe('')
      const none = await runCli(cli.bin, ['items', '--data', alone, '--topic', 'news'])
      expect(none.stdout).toBe('')
    } finally {
      await honest.stop()
      await forger.stop()
    }
  })

  it('trusts only this node for a topic it published: refuses other trust flags, and syncs it as its publisher', async () => {
    const input = join(cli.work, 'own.jsonl')
    const items = ['0x01', '0x02', '0x03']
    await writeItemLines(input, items)
    const data = join(cli.work, 'own')
    const published = await runCli(cli.bin, ['publish', '--data', data, '--topic', 'mine', input])
    expect(published.code, published.stderr).toBe(0)
    const self = (JSON.parse(published.stdout) as { publisher: string }).publisher
    // `publish` notes the key it signed with beside the store; a directory published before it did has it noted
    // by the first `serve` or `sync` that recognises its key (the refusals below).
    const publishers = publishersPath(data, 'mine')
    expect(await readFile(publishers, 'utf8')).toBe(`${self}\n`)
    await rm(publishers)
    const listed = async (): Promise<string[]> => {
      const run = await runCli(cli.bin, ['items', '--data', data, '--topic', 'mine'])
      expect(run.code, run.stderr).toBe(0)
      return run.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { data: string }).data)
    }
    // Under another publisher the stored items are unproven, and a node would drop them; under a quorum, peers
    // agreeing on another history could replace them. They exist nowhere else.
    const other = '12D3KooWGiKD4yYfxGEoLnnhkUph1qmBTdTuwdgVuf8UQYc9Vyuw'
    const refused = (flag: string, risk: string, command: string) =>
      new RegExp(
        `^dsfg: topic mine in .* was published from this directory \\(${self}\\): ${flag} ${risk}; give --publisher ${command === 'serve' ? 'mine=' : ''}${self} or no trust flag for it$`
      )
    const nowhere = `/ip4/127.0.0.1/tcp/1/p2p/${other}`
    for (const [flags, flag, risk] of [
      [['--publisher', other], `--publisher ${other}`, 'would drop its items'],
      [['--quorum', '1'], '--quorum 1', 'would let peers replace its items']
    ] as const) {
      const served = await runCli(cli.bin, ['serve', '--data', data, '--topic', 'mine', ...flags])
      expectOneLineError(served, 2, refused(flag, risk, 'serve'))
      const synced = await runCli(cli.bin, ['sync', '--data', data, '--peer', nowhere, '--topic', 'mine', ...flags])
      expectOneLineError(synced, 2, refused(flag, risk, 'sync'))
    }
    expect(await listed()).toEqual(items)
    expect(await readFile(publishers, 'utf8')).toBe(`${self}\n`)
    // A publish that did not finish leaves its journal: the topic is neither served nor synced until it is done.
    const journal = journalPath(data, 'mine')
    await writeFile(journal, '{}')
    const unfinished = new RegExp(`^dsfg: topic mine in .* has an unfinished publish \\(${journal}\\): run that publish again`)
    expectOneLineError(await runCli(cli.bin, ['serve', '--data', data, '--topic', 'mine']), 1, unfinished)
    expectOneLineError(await runCli(cli.bin, ['sync', '--data', data, '--peer', nowhere, '--topic', 'mine']), 1, unfinished)
    await rm(journal)

    // A copy of the directory under another key (its node key lost, or not copied) still holds the topic as
    // published from it: no other trust is taken for it (`publish` noted its key beside the store). The copy then
    // serves the topic and its record, and with no trust flag a sync of the original trusts its own key alone,
    // as `serve` does: it would be quorum:1 otherwise.
    const copy = join(cli.work, 'own-copy')
    await cp(data, copy, { recursive: true })
    await rm(join(copy, 'node.key'))
    for (const [flags, refusal] of [
      [['--publisher', other], /\(\S+\): --publisher \S+ would drop its items/],
      [['--quorum', '1'], /\(\S+\): --quorum 1 would let peers replace its items/]
    ] as const) {
      const refused = await runCli(cli.bin, ['serve', '--data', copy, '--topic', 'mine', ...flags], { timeoutMs: 20_000 })
      expectOneLineError(refused, 2, new RegExp(`^dsfg: topic mine in .* was published from this directory \\(${self}\\)`))
      expectOneLineError(refused, 2, refusal)
    }
    // Nor does the copy publish on under its new key: peers trusting the key the topic was published with would
    // refuse its checkpoints, and the topic would move to another publisher.
    const moved = await runCli(cli.bin, ['publish', '--data', copy, '--topic', 'mine', input])
    expectOneLineError(moved, 1, new RegExp(`^dsfg: topic mine in .* was published with the key of ${self}, and .*node\\.key is now (?!${self})\\S+: `))
    // Refused with no key at all, it makes none: the directory is left as it was.
    const keyless = join(cli.work, 'own-keyless')
    await cp(data, keyless, { recursive: true })
    await rm(join(keyless, 'node.key'))
    expectOneLineError(await runCli(cli.bin, ['publish', '--data', keyless, '--topic', 'mine', input]), 1, /node\.key is now absent: /)
    await expect(access(join(keyless, 'node.key'))).rejects.toMatchObject({ code: 'ENOENT' })
    const server = await serveCli(cli.bin, ['--data', copy, '--topic', 'mine'])
    try {
      const synced = await runCli(cli.bin, ['sync', '--data', data, '--peer', server.info.addrs[0]!, '--topic', 'mine'], { timeoutMs: 60_000 })
      expect(synced.code, synced.stderr).toBe(0)
      expect(JSON.parse(synced.stdout)).toMatchObject({ topic: 'mine', trust: 'publisher', head: 2, verified: true })
    } finally {
      expect(await server.stop()).toBe(0)
    }
    // Nor does a peer that holds a longer history of its own under the topic's name make it take anything: the sync
    // ends on its own record, which no peer needs to hand it.
    const forgerInput = join(cli.work, 'forger.jsonl')
    await writeItemLines(forgerInput, ['0xf0', '0xf1', '0xf2', '0xf3', '0xf4'])
    const forgerData = join(cli.work, 'forger')
    expect((await runCli(cli.bin, ['publish', '--data', forgerData, '--topic', 'mine', forgerInput])).code).toBe(0)
    const forger = await serveCli(cli.bin, ['--data', forgerData, '--topic', 'mine'])
    try {
      const synced = await runCli(cli.bin, ['sync', '--data', data, '--peer', forger.info.addrs[0]!, '--topic', 'mine', '--wait', '5'], {
        timeoutMs: 60_000
      })
      expect(synced.code, synced.stderr).toBe(0)
      expect(JSON.parse(synced.stdout)).toMatchObject({ topic: 'mine', trust: 'publisher', head: 2, fetched: 0, verified: true })
    } finally {
      expect(await forger.stop()).toBe(0)
    }
    expect(await listed()).toEqual(items)
    // Naming this node itself is what the flag is for.
    const own = await serveCli(cli.bin, ['--data', data, '--topic', 'mine', '--publisher', self])
    expect(own.info.peerId).toBe(self)
    expect(await own.stop()).toBe(0)
    expect(await listed()).toEqual(items)

    // One process serves its own topic beside a topic of another publisher: --publisher TOPIC=PEERID names that
    // topic's alone (a plain --publisher would apply to both, and is refused: below).
    const theirsInput = join(cli.work, 'theirs.jsonl')
    const theirs = ['0xa0', '0xa1', '0xa2', '0xa3']
    await writeItemLines(theirsInput, theirs)
    const theirsPublished = await runCli(cli.bin, ['publish', '--data', forgerData, '--topic', 'theirs', theirsInput])
    expect(theirsPublished.code, theirsPublished.stderr).toBe(0)
    const publisher = (JSON.parse(theirsPublished.stdout) as { publisher: string }).publisher
    // A longer history of `theirs` under another key, which a quorum of one would take (the highest head).
    const longerInput = join(cli.work, 'longer.jsonl')
    await writeItemLines(longerInput, ['0xb0', '0xb1', '0xb2', '0xb3', '0xb4', '0xb5'])
    expect((await runCli(cli.bin, ['publish', '--data', copy, '--topic', 'theirs', longerInput])).code).toBe(0)
    const origin = await serveCli(cli.bin, ['--data', forgerData, '--topic', 'theirs'])
    const longer = await serveCli(cli.bin, ['--data', copy, '--topic', 'theirs'])
    try {
      const peers = [origin, longer].flatMap((s) => ['--peer', s.info.addrs[0]!])
      const both = await serveCli(cli.bin, ['--data', data, '--topic', 'mine', '--topic', 'theirs', '--publisher', `theirs=${publisher}`, ...peers])
      try {
        expect(both.info.topics).toEqual(['mine', 'theirs'])
        // It follows `theirs` from its publisher and serves it on; a joiner trusting that publisher takes it from here.
        const args = ['sync', '--data', ':memory:', '--peer', both.info.addrs[0]!, '--topic', 'theirs', '--publisher', publisher]
        const joined = await runCli(cli.bin, args, { timeoutMs: 60_000 })
        expect(joined.code, joined.stderr).toBe(0)
        expect(JSON.parse(joined.stdout)).toMatchObject({ topic: 'theirs', trust: 'publisher', head: 3, verified: true })
      } finally {
        expect(await both.stop()).toBe(0)
      }
    } finally {
      expect(await origin.stop()).toBe(0)
      expect(await longer.stop()).toBe(0)
    }
    expect(await listed()).toEqual(items)
    const theirsListed = async (): Promise<string[]> => {
      const run = await runCli(cli.bin, ['items', '--data', data, '--topic', 'theirs'])
      return run.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { data: string }).data)
    }
    expect(await theirsListed()).toEqual(theirs)
    // A plain --publisher applies to both topics, so it is refused for `mine`, and the advice names that topic alone.
    const plain = await runCli(cli.bin, ['serve', '--data', data, '--topic', 'mine', '--topic', 'theirs', '--publisher', publisher])
    expectOneLineError(plain, 2, new RegExp(`: --publisher ${publisher} would drop its items; give --publisher mine=${self} or no trust flag for it$`))
    // Nor does it publish onto the topic it follows: its checkpoint would sign the other publisher's items as its
    // own, and the directory would then hold the topic as its own, refusing the publisher it followed.
    const fork = await runCli(cli.bin, ['publish', '--data', data, '--topic', 'theirs', input])
    expectOneLineError(fork, 1, new RegExp(`^dsfg: topic theirs in .* holds the history ${publisher} signed: a publish would sign it as this node's`))
    expect(await theirsListed()).toEqual(theirs)
  })

  it('gives one-line errors for bad topic input', async () => {
    const bad = join(cli.work, 'bad.jsonl')
    await writeFile(bad, '{"data":"0x0"}\n')
    const odd = await runCli(cli.bin, ['publish', '--data', ':memory:', '--topic', 'news', bad])
    expect(odd.code).toBe(1)
    expect(odd.stderr.trim()).toMatch(/^dsfg: .*line 1: data has an odd number of hex digits$/)
    const both = await runCli(cli.bin, ['sync', '--data', ':memory:', '--peer', '/ip4/127.0.0.1/tcp/1', '--topic', 't', '--root', `0x${'00'.repeat(32)}`])
    expect(both.code).toBe(2)
    expect(both.stderr.trim()).toBe('dsfg: give exactly one of --root and --topic')
    const from = await runCli(cli.bin, ['items', '--data', ':memory:', '--topic', 't', '--from', '-1'])
    expect(from.code).toBe(2)
  })
})
