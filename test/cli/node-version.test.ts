import { describe, expect, it } from 'vitest'
import { checkNodeVersion, MIN_NODE_MAJOR } from '../../src/cli/node-version.js'

describe('checkNodeVersion', () => {
  it('accepts Node 22 and newer', () => {
    expect(checkNodeVersion('22.0.0')).toBeUndefined()
    expect(checkNodeVersion('22.23.3')).toBeUndefined()
    expect(checkNodeVersion('v24.1.0')).toBeUndefined()
    expect(checkNodeVersion('100.0.0')).toBeUndefined()
    expect(checkNodeVersion(process.versions.node)).toBeUndefined()
  })

  it('refuses older Node with one line that says what to do', () => {
    for (const version of ['20.20.2', 'v21.7.3', '18.0.0', '8.17.0']) {
      const message = checkNodeVersion(version)
      expect(typeof message).toBe('string')
      expect(message).toContain(`Node.js ${MIN_NODE_MAJOR}`)
      expect(message).toContain(version)
      expect(message).toContain('npm run')
      expect(message).toContain('install Node.js')
      expect(message).not.toContain('\n')
    }
  })

  it('refuses a version it cannot read, with the same message as an old one', () => {
    // The refusal of an old version, with that version's text in the place where it names the version.
    const refusal = (version: string): string => checkNodeVersion('20.20.2')!.replace('20.20.2', version)
    for (const version of ['', 'banana', 'v', '.22.1', 'x22.0.0']) expect(checkNodeVersion(version)).toBe(refusal(version))
  })
})
