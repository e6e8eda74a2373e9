import { describe, expect, it } from 'vitest'
import { reportError } from '../../src/cli/error-report.js'
import { EXIT_FAILURE, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE } from '../../src/cli/exit-codes.js'
import {
  InterruptedError,
  InvalidInputError,
  InvalidProofError,
  MissingNodeError,
  StoreError,
  UsageError
} from '../../src/errors.js'

describe('reportError', () => {
  it('gives usage errors exit 2 and data errors exit 1', () => {
    expect(reportError(new UsageError('unknown option --x'))).toEqual({
      message: 'unknown option --x',
      exitCode: EXIT_USAGE
    })
    expect(reportError(new InvalidInputError('f line 3: key is not valid hex'))).toEqual({
      message: 'f line 3: key is not valid hex',
      exitCode: EXIT_FAILURE
    })
    expect(reportError(new StoreError('cannot open store at /x')).exitCode).toBe(EXIT_FAILURE)
  })

  it('gives a stop by SIGINT or SIGTERM its own exit code, not "internal error"', () => {
    expect(reportError(new InterruptedError('SIGINT'))).toEqual({ message: 'interrupted by SIGINT', exitCode: EXIT_SIGINT })
    expect(reportError(new InterruptedError('SIGTERM'))).toEqual({ message: 'interrupted by SIGTERM', exitCode: EXIT_SIGTERM })
  })

  it('prefixes proof failures with "invalid proof" once', () => {
    expect(reportError(new InvalidProofError('proof node 1 missing')).message).toBe('invalid proof: proof node 1 missing')
    expect(reportError(new InvalidProofError('invalid proof: bad')).message).toBe('invalid proof: bad')
  })

  it('names the missing node', () => {
    const hash = new Uint8Array(32).fill(0xab)
    expect(reportError(new MissingNodeError(hash)).message).toBe(`trie node missing from store: 0x${'ab'.repeat(32)}`)
    const named = new MissingNodeError(hash, `trie node 0x${'ab'.repeat(32)} missing`)
    expect(reportError(named).message).toBe(`trie node 0x${'ab'.repeat(32)} missing`)
  })

  it('turns Node file errors into "path: reason"', () => {
    const err = Object.assign(new Error("ENOENT: no such file or directory, open 'in.jsonl'"), {
      code: 'ENOENT',
      syscall: 'open',
      path: 'in.jsonl'
    })
    expect(reportError(err)).toEqual({ message: 'in.jsonl: no such file or directory', exitCode: EXIT_FAILURE })
  })

  it("names each address libp2p could not listen on and why, without libp2p's advice or the stack", () => {
    // The shape of libp2p 3's message: advice, then each failed address with its error and stack, indented.
    const err = new Error(
      'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n' +
        '\n  /ip4/8.8.8.8/tcp/0: Error: listen EADDRNOTAVAIL: address not available 8.8.8.8\n      at Server.setupListenHandle [as _listen2] (node:net:1915:21)\n' +
        '\n  /ip6/::1/tcp/4001: Error: listen EADDRINUSE: address already in use ::1:4001\n      at Server.setupListenHandle (node:net:1915:21)\n'
    )
    err.name = 'UnsupportedListenAddressesError'
    expect(reportError(err)).toEqual({
      message:
        'cannot listen on /ip4/8.8.8.8/tcp/0: no such address on this machine (EADDRNOTAVAIL); /ip6/::1/tcp/4001: address already in use (EADDRINUSE)',
      exitCode: EXIT_FAILURE
    })
  })

  it('keeps anything else on one line, marked as internal', () => {
    const report = reportError(new TypeError('x is undefined\n    at foo (bar.js:1:1)'))
    expect(report.message).toBe('internal error: x is undefined at foo (bar.js:1:1)')
    expect(report.exitCode).toBe(EXIT_FAILURE)
    expect(reportError('thrown string').message).toBe('internal error: thrown string')
  })
})
