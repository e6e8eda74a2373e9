import { describe, expect, it } from 'vitest'
import { COMMANDS, findCommand, SUMMARIES } from '../../src/cli/commands/index.js'
import { formatHelp } from '../../src/cli/main.js'

describe('the command table', () => {
  it('loads, for each name, the command of that name with the summary dsfg --help lists', async () => {
    const names = Object.keys(SUMMARIES)
    expect(COMMANDS.map((c) => c.name)).toEqual(names.filter((n) => n !== 'demo-node'))
    for (const name of names) {
      const entry = findCommand(name)!
      const command = await entry.load()
      expect(command.name).toBe(name)
      expect(command.summary).toBe(entry.summary)
      expect(command.help()).toContain(name)
    }
    expect(findCommand('nope')).toBeUndefined()
    // The internal command runs but is not listed.
    expect(formatHelp()).not.toContain('demo-node')
  })
})
