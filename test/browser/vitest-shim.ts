/**
 * The part of vitest's API the shared test suites use (`describe`, `it`, `beforeEach`, `afterEach`,
 * `expect`), for running them inside a Chromium page: `test/browser/bundle.ts` bundles a page's tests with
 * `vitest` aliased to this file. `expect` is vitest's own (`@vitest/expect` on chai, both browser-safe), so
 * the assertions mean in the page what they mean under vitest. `runRegistered` runs the tests in order and
 * returns one result per test.
 */
import { chai, type ExpectStatic, JestAsymmetricMatchers, JestChaiExpect, JestExtend } from '@vitest/expect'

chai.use(JestExtend)
chai.use(JestChaiExpect)
chai.use(JestAsymmetricMatchers)

export const expect = chai.expect as unknown as ExpectStatic

type Hook = () => unknown | Promise<unknown>

interface Registered {
  name: string
  fn: Hook
  before: Hook[]
  after: Hook[]
}

/** What one test did in the page. */
export interface PageTestResult {
  name: string
  ok: boolean
  error?: string
}

const registered: Registered[] = []
const path: string[] = []
let before: Hook[] = []
let after: Hook[] = []

export function describe(name: string, body: () => void): void {
  const saved = [before, after]
  path.push(name)
  before = [...before]
  after = [...after]
  body()
  path.pop()
  ;[before, after] = saved as [Hook[], Hook[]]
}

export function it(name: string, fn: Hook): void {
  registered.push({ name: [...path, name].join(' > '), fn, before, after })
}

export function beforeEach(fn: Hook): void {
  before.push(fn)
}

export function afterEach(fn: Hook): void {
  after.push(fn)
}

/** How long one test, its hooks included, may take in the page before it fails as hung. */
const PAGE_TEST_TIMEOUT_MS = 20_000

/** `work`, or an error naming `what` once `PAGE_TEST_TIMEOUT_MS` has passed without it settling. */
async function bounded(what: string, work: () => Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${PAGE_TEST_TIMEOUT_MS} ms`)), PAGE_TEST_TIMEOUT_MS)
  })
  try {
    await Promise.race([work(), hung])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs every registered test, one after the other, each between its `beforeEach` and `afterEach` hooks. A test
 * (or hook) that never settles fails by name after `PAGE_TEST_TIMEOUT_MS`, and the rest still run: a hang in
 * one used to leave the whole page's run, and the hook that awaited it, timing out with no name (once in a
 * clean-clone CI run, not reproduced in ten runs since). Each test's start is logged to the page's console.
 */
export async function runRegistered(): Promise<PageTestResult[]> {
  const results: PageTestResult[] = []
  for (const test of registered) {
    let error: unknown
    console.log(`start ${test.name}`)
    try {
      await bounded(`"${test.name}"`, async () => {
        for (const hook of test.before) await hook()
        await test.fn()
      })
    } catch (err) {
      error = err
    }
    try {
      await bounded(`the afterEach hooks of "${test.name}"`, async () => {
        for (const hook of test.after) await hook()
      })
    } catch (err) {
      error ??= err
    }
    results.push(error === undefined ? { name: test.name, ok: true } : { name: test.name, ok: false, error: String(error) })
  }
  return results
}
