import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ClassicLevel } from 'classic-level'
import { expectOneLineError, REPO_ROOT, runCli, useBuiltCli } from './cli-harness.js'

const ROOT = `0x${'11'.repeat(32)}`

/** Every key of the LevelDB at `dir`, as hex (the store is closed again). */
async function keysOf(dir: string): Promise<string[]> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  try {
    return (await db.keys().all()).map((k) => Buffer.from(k).toString('hex'))
  } finally {
    await db.close()
  }
}

describe('dsfg and the directories it is pointed at', () => {
  const cli = useBuiltCli('dsfg-store-marker-')

  it('read-only commands refuse a missing directory without creating it', async () => {
    const missing = join(cli.work, 'missing')
    expectOneLineError(await runCli(cli.bin, ['get', '--data', missing, '--root', ROOT, '--key', '0x01']), 1, /^dsfg: no DSFG store at /)
    expectOneLineError(await runCli(cli.bin, ['items', '--data', missing, '--topic', 't']), 1, /^dsfg: no DSFG store at /)
    expect(existsSync(missing)).toBe(false)
  })

  it('read-only commands refuse a directory that holds no database, and write nothing into it', async () => {
    const plain = join(cli.work, 'plain')
    await mkdir(plain)
    await writeFile(join(plain, 'file.txt'), 'hi\n')
    expectOneLineError(await runCli(cli.bin, ['get', '--data', plain, '--root', ROOT, '--key', '0x01']), 1, /holds no database/)
    expectOneLineError(await runCli(cli.bin, ['items', '--data', plain, '--topic', 't']), 1, /holds no database/)
    expect(await readdir(plain)).toEqual(['file.txt'])
  })

  it('refuses another program’s LevelDB, reading or writing, and leaves it as it was', async () => {
    const foreign = join(cli.work, 'foreign')
    const db = new ClassicLevel<Uint8Array, Uint8Array>(foreign, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.put(Uint8Array.of(1, 2, 3), Uint8Array.of(4))
    await db.close()
    const before = await keysOf(foreign)
    expectOneLineError(await runCli(cli.bin, ['items', '--data', foreign, '--topic', 't']), 1, /is not a DSFG store/)
    const input = join(cli.work, 'pairs.jsonl')
    await writeFile(input, '{"key":"0x01","value":"0x02"}\n')
    expectOneLineError(await runCli(cli.bin, ['import', '--data', foreign, input]), 1, /is not a DSFG store/)
    expect(await keysOf(foreign)).toEqual(before)
  })

  it('marks a store it creates, and reads it back', async () => {
    const dir = join(cli.work, 'own')
    const input = join(cli.work, 'own.jsonl')
    await writeFile(input, '{"key":"0x01","value":"0x02"}\n')
    const imported = await runCli(cli.bin, ['import', '--data', dir, input])
    expect(imported.code, imported.stderr).toBe(0)
    const { root } = JSON.parse(imported.stdout) as { root: string }
    const got = await runCli(cli.bin, ['get', '--data', dir, '--root', root, '--key', '0x01'])
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout)).toEqual({ value: '0x02' })
  })

  it('prints its version, and refuses a --listen that is not a multiaddr as a usage error', async () => {
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    const printed = await runCli(cli.bin, ['--version'])
    expect([printed.code, printed.stdout]).toEqual([0, `${version}\n`])
    expectOneLineError(await runCli(cli.bin, ['serve', '--data', ':memory:', '--listen', 'nonsense']), 2, /^dsfg: --listen "nonsense" is not a multiaddr/)
  })
})
