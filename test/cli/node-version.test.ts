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
      expect(message).toBeDefined()
      expect(message).toContain(`Node.js ${MIN_NODE_MAJOR}`)
      expect(message).toContain(version)
      expect(message).toContain('npm run')
      expect(message).toContain('npx dsfg')
      expect(message).not.toContain('\n')
    }
  })

  it('refuses a version it cannot read', () => {
    expect(checkNodeVersion('')).toBeDefined()
    expect(checkNodeVersion('banana')).toBeDefined()
  })
})
