import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

/** Debian's `chromium` package (`apt-get install -y chromium`); nothing here downloads a browser of its own. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'

export function chromiumFound(): boolean {
  return existsSync(CHROMIUM_PATH)
}

/** Headless Chromium. `--no-sandbox`: CI runs as root, where Chromium's sandbox refuses to start. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox'], timeout: 30_000 })
}
