import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundlePage, servePage } from './bundle.js'
import { launchChromium } from './chromium.js'
import type { PageTestResult } from './vitest-shim.js'

/** The `KVStore` contract, run inside Chromium against `BrowserLevelStore` (IndexedDB). */
describe('BrowserLevelStore in Chromium', () => {
  let browser: Browser
  let results: PageTestResult[]

  beforeAll(async () => {
    const page = await servePage(await bundlePage('test/browser/store-contract.page.ts'))
    browser = await launchChromium()
    try {
      const tab = await browser.newPage()
      // The page logs each test as it starts: a run that still hangs names where.
      tab.on('console', (message) => console.log(`page: ${message.text()}`))
      await tab.goto(page.url)
      await tab.waitForFunction(() => 'runTests' in globalThis, undefined, { timeout: 20_000 })
      results = await tab.evaluate(() => (globalThis as unknown as { runTests: () => Promise<PageTestResult[]> }).runTests())
    } finally {
      await page.close()
    }
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
  })

  it('passes every test of the KVStore contract and the reopen test', () => {
    const names = results.map((r) => r.name)
    expect(names).toContain('BrowserLevelStore (KVStore contract) > rejects every call after close with StoreError; close twice is fine')
    expect(names).toContain('BrowserLevelStore > keeps its data across close and reopen, with the format marker')
    expect(results.length).toBeGreaterThanOrEqual(10)
    for (const result of results) console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${result.name}${result.error === undefined ? '' : `: ${result.error}`}`)
    expect(results.filter((r) => !r.ok)).toEqual([])
  })
})
