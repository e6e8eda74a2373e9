import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { type CliRun, expectOneLineError, runCli, serveCli, useBuiltCli } from './cli-harness.js'

// Each test spawns the compiled CLI several times, serve included; on a loaded 2-vCPU machine that takes seconds.
vi.setConfig({ testTimeout: 120_000 })

const cli = useBuiltCli('dsfg-identity-')
let dirCount = 0

function dataDir(): string {
  return join(cli.work, `data-${++dirCount}`)
}

/** The peer id `dsfg id` prints, after checking that it prints exactly `{"peerId"}` and nothing else. */
function peerIdOf(result: CliRun): string {
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  const printed = JSON.parse(result.stdout) as Record<string, unknown>
  expect(Object.keys(printed)).toEqual(['peerId'])
  expect(printed['peerId']).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/)
  return printed['peerId'] as string
}

// Any well-formed peer id: the trust flags are checked before a node starts, so it need not exist.
const SOME_PEER = '12D3KooWGiKD4yYfxGEoLnnhkUph1qmBTdTuwdgVuf8UQYc9Vyuw'

describe('the node key in --data', () => {
  it('is created once, mode 0600, and gives id and serve one peer id across restarts', async () => {
    const data = dataDir()
    const first = peerIdOf(await runCli(cli.bin, ['id', '--data', data]))
    const key = join(data, 'node.key')
    expect((await stat(key)).mode & 0o777).toBe(0o600)
    const written = await readFile(key)
    expect(peerIdOf(await runCli(cli.bin, ['id', '--data', data]))).toBe(first)

    for (let restart = 0; restart < 2; restart++) {
      const server = await serveCli(cli.bin, ['--data', data])
      expect(server.info.peerId).toBe(first)
      expect(server.info.addrs.every((a) => a.endsWith(`/p2p/${first}`))).toBe(true)
      expect(await server.stop()).toBe(0)
    }
    // The store beside it did not disturb the key, and nothing rewrote it.
    expect(await readFile(key)).toEqual(written)
    expect(peerIdOf(await runCli(cli.bin, ['id', '--data', data]))).toBe(first)
  })

  it('is created by serve too, in the store directory it creates, and another directory has another id', async () => {
    const data = dataDir()
    const server = await serveCli(cli.bin, ['--data', data])
    expect(await server.stop()).toBe(0)
    expect((await stat(join(data, 'node.key'))).mode & 0o777).toBe(0o600)
    expect(peerIdOf(await runCli(cli.bin, ['id', '--data', data]))).toBe(server.info.peerId)
    expect(peerIdOf(await runCli(cli.bin, ['id', '--data', dataDir()]))).not.toBe(server.info.peerId)
  })

  it('is not kept for :memory:, where id is a usage error', async () => {
    expectOneLineError(await runCli(cli.bin, ['id', '--data', ':memory:']), 2, /:memory: keeps no key/)
  })

  it('is refused in one line, exit 1, and left alone when the file is not a key', async () => {
    const valid = dataDir()
    peerIdOf(await runCli(cli.bin, ['id', '--data', valid]))
    const truncated = new Uint8Array(await readFile(join(valid, 'node.key'))).subarray(0, 40)
    for (const content of [new TextEncoder().encode('not a key\n'), new Uint8Array(0), truncated]) {
      const data = dataDir()
      await mkdir(data)
      const key = join(data, 'node.key')
      await writeFile(key, content)
      const refused = /node\.key does not hold a libp2p private key \(move it away to get a new peer id\)$/
      expectOneLineError(await runCli(cli.bin, ['id', '--data', data]), 1, refused)
      expectOneLineError(await runCli(cli.bin, ['serve', '--data', data]), 1, refused)
      expect(new Uint8Array(await readFile(key))).toEqual(content)
    }
  })

  it('is refused in one line when --data is a file', async () => {
    const file = join(cli.work, 'a-file')
    await writeFile(file, '')
    expectOneLineError(await runCli(cli.bin, ['id', '--data', file]), 1, /cannot read the node key .*node\.key: not a directory$/)
  })
})

describe('trust flags', () => {
  const sync = ['sync', '--data', ':memory:', '--peer', '/ip4/127.0.0.1/tcp/1', '--topic', 't']
  const serve = ['serve', '--data', ':memory:', '--topic', 't']

  it('--publisher must be a peer id', async () => {
    for (const command of [sync, serve]) {
      expectOneLineError(await runCli(cli.bin, [...command, '--publisher', 'nope']), 2, /^dsfg: --publisher "nope" is not a peer id$/)
      const typo = `${SOME_PEER.slice(0, -1)}0`
      expectOneLineError(await runCli(cli.bin, [...command, '--publisher', typo]), 2, /is not a peer id$/)
    }
  })

  it('--publisher and --quorum exclude each other', async () => {
    for (const command of [sync, serve]) {
      const both = [...command, '--publisher', SOME_PEER, '--quorum', '2']
      expectOneLineError(await runCli(cli.bin, both), 2, /^dsfg: give at most one of --publisher and --quorum$/)
    }
  })

  it('--quorum must be a whole number of at least 1', async () => {
    for (const quorum of ['0', '-1', '1.5', 'two']) {
      expectOneLineError(await runCli(cli.bin, [...sync, `--quorum=${quorum}`]), 2, /^dsfg: --quorum must be a whole number of at least 1$/)
    }
  })

  it('a topic name no store takes, or one given twice to serve, is a usage error before a store is made', async () => {
    const long = 'x'.repeat(300)
    const data = join(cli.work, 'never-made')
    await writeFile(join(cli.work, 'empty.jsonl'), '')
    for (const args of [
      ['serve', '--data', data, '--topic', long],
      ['sync', '--data', data, '--peer', '/ip4/127.0.0.1/tcp/1', '--topic', long],
      ['publish', '--data', data, '--topic', long, join(cli.work, 'empty.jsonl')],
      ['items', '--data', data, '--topic', long]
    ]) {
      expectOneLineError(await runCli(cli.bin, args), 2, /^dsfg: --topic "x{40}…": topic must be 1 to 256 UTF-8 bytes, got 300$/)
    }
    expectOneLineError(await runCli(cli.bin, ['serve', '--data', data, '--topic', 't', '--topic', 't']), 2, /^dsfg: --topic "t" is given twice$/)
    await expect(stat(data)).rejects.toThrow(/ENOENT/)
  })

  it('need a topic', async () => {
    const root = ['sync', '--data', ':memory:', '--peer', '/ip4/127.0.0.1/tcp/1', '--root', `0x${'00'.repeat(32)}`]
    expectOneLineError(await runCli(cli.bin, [...root, '--quorum', '2']), 2, /^dsfg: --publisher, --quorum and --items-only apply to --topic only$/)
    expectOneLineError(
      await runCli(cli.bin, ['serve', '--data', ':memory:', '--publisher', SOME_PEER]),
      2,
      /^dsfg: --publisher and --quorum need a --topic$/
    )
  })
})
