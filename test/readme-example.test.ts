import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { main } from '../examples/quickstart.js'
import { MemoryStore, TopicStore, toHex } from '../src/index.js'

const EXAMPLE = 'examples/quickstart.ts'
const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')

/** The ```ts block that follows `<!-- example: PATH -->` in `markdown`, or undefined. */
function exampleBlock(markdown: string, path: string): string | undefined {
  const marker = markdown.indexOf(`<!-- example: ${path} -->`)
  if (marker < 0) return undefined
  const match = /^```ts\n([\s\S]*?)^```$/m.exec(markdown.slice(marker))
  return match?.[1]
}

describe('the README example', () => {
  it(`is ${EXAMPLE}, word for word`, () => {
    expect(exampleBlock(read('README.md'), EXAMPLE)).toBe(read(EXAMPLE))
  })

  it('runs: the late joiner gets every message in order, and its root is the publisher topic trie root', async () => {
    const { messages, root } = await main(300)
    const expected = Array.from({ length: 300 }, (_v, i) => `message ${i}`)
    expect(messages).toEqual(expected)
    // The root the same items give in a store of our own, not the publisher's word for it.
    const store = new TopicStore(new MemoryStore())
    await store.appendMany(
      'chat',
      expected.map((m) => new TextEncoder().encode(m))
    )
    expect(root).toBe(toHex(await store.root('chat')))
  }, 20_000)
})
