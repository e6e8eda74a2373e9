import { describe, expect, it } from 'vitest'
import { formatCommandHelp, formatUsage, parseArgs, wantsHelp } from '../../src/cli/args.js'
import { UsageError } from '../../src/errors.js'

const OPTIONS = {
  data: { type: 'string', value: 'DIR', required: true, description: 'store' },
  secure: { type: 'boolean', description: 'hash keys' },
  peer: { type: 'string', value: 'MADDR', multiple: true, description: 'peers' },
  from: { type: 'string', value: 'N', description: 'first item' }
} as const
const POSITIONALS = [{ name: 'FILE', description: 'input' }] as const

function usageError(run: () => unknown): UsageError {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return err as UsageError
  }
  throw new Error('expected a UsageError')
}

describe('parseArgs', () => {
  it('parses values, booleans, repeated options and positionals, typed from the table', () => {
    const { options, positionals } = parseArgs(
      ['--data', 'd', '--peer', 'a', 'file.jsonl', '--peer=b', '--secure'],
      OPTIONS,
      POSITIONALS
    )
    expect(options).toEqual({ data: 'd', secure: true, peer: ['a', 'b'], from: undefined })
    expect(positionals).toEqual(['file.jsonl'])
    const data: string = options.data
    const peers: string[] = options.peer
    expect([data, peers.length]).toEqual(['d', 2])
  })

  it('defaults booleans to false and multiples to []', () => {
    const { options } = parseArgs(['--data=x', 'f'], OPTIONS, POSITIONALS)
    expect(options.secure).toBe(false)
    expect(options.peer).toEqual([])
  })

  it('treats everything after -- as positional, and - as stdin', () => {
    expect(parseArgs(['--data', 'd', '--', '--secure'], OPTIONS, POSITIONALS).positionals).toEqual(['--secure'])
    expect(parseArgs(['--data', 'd', '-'], OPTIONS, POSITIONALS).positionals).toEqual(['-'])
  })

  it('rejects unknown options', () => {
    expect(usageError(() => parseArgs(['--data', 'd', '--bogus', 'f'], OPTIONS, POSITIONALS)).message).toBe(
      'unknown option --bogus'
    )
    expect(usageError(() => parseArgs(['-x'], OPTIONS, POSITIONALS)).message).toBe('unknown option -x')
    // Inherited object keys are not options.
    expect(usageError(() => parseArgs(['--toString'], OPTIONS, POSITIONALS)).message).toBe('unknown option --toString')
  })

  it('rejects a missing value, including one swallowed by the next option, and an empty one', () => {
    expect(usageError(() => parseArgs(['f', '--data'], OPTIONS, POSITIONALS)).message).toBe(
      'option --data DIR needs a value'
    )
    // `--data ''` reached the store, which refused it with exit 1 instead of a usage error's 2.
    for (const argv of [['f', '--data', ''], ['f', '--data=']]) {
      expect(usageError(() => parseArgs(argv, OPTIONS, POSITIONALS)).message).toBe('option --data DIR needs a value')
    }
    expect(usageError(() => parseArgs(['--data', '--secure', 'f'], OPTIONS, POSITIONALS)).message).toMatch(
      /--data DIR needs a value/
    )
  })

  it('takes a negative number as a value, for the flag\'s own check to refuse', () => {
    expect(parseArgs(['--data', '-1', 'f'], OPTIONS, POSITIONALS).options['data']).toBe('-1')
  })

  it('rejects a missing required option', () => {
    expect(usageError(() => parseArgs(['f'], OPTIONS, POSITIONALS)).message).toBe(
      'missing required option --data DIR'
    )
  })

  it('rejects a repeated single-valued option and a value on a boolean', () => {
    expect(usageError(() => parseArgs(['--data', 'a', '--data', 'b', 'f'], OPTIONS, POSITIONALS)).message).toMatch(
      /--data given more than once/
    )
    expect(usageError(() => parseArgs(['--data', 'a', '--secure=yes', 'f'], OPTIONS, POSITIONALS)).message).toBe(
      'option --secure takes no value'
    )
  })

  it('counts positionals', () => {
    expect(usageError(() => parseArgs(['--data', 'a'], OPTIONS, POSITIONALS)).message).toBe('missing argument FILE')
    expect(usageError(() => parseArgs(['--data', 'a', 'f', 'g'], OPTIONS, POSITIONALS)).message).toBe(
      'unexpected argument g'
    )
    expect(parseArgs(['--data', 'a'], OPTIONS, [{ name: 'FILE', description: '', optional: true }]).positionals).toEqual(
      []
    )
  })
})

describe('help', () => {
  it('finds --help and -h before --', () => {
    expect(wantsHelp(['--data', 'x', '--help'])).toBe(true)
    expect(wantsHelp(['-h'])).toBe(true)
    expect(wantsHelp(['--', '--help'])).toBe(false)
    expect(wantsHelp([])).toBe(false)
  })

  it('builds the usage line and help text from the table', () => {
    expect(formatUsage('x', OPTIONS, POSITIONALS)).toBe('dsfg x --data DIR [--secure] [--peer MADDR…] [--from N] FILE')
    const help = formatCommandHelp('x', 'Does x.', OPTIONS, POSITIONALS)
    expect(help).toContain('Usage: dsfg x --data DIR')
    expect(help).toContain('Does x.')
    expect(help).toMatch(/--data DIR\s+store \(required\)/)
    expect(help).toMatch(/--peer MADDR…\s+peers/)
    expect(help).toMatch(/FILE\s+input/)
    expect(help).toMatch(/-h, --help\s+show this help/)
  })
})
