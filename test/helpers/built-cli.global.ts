import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'

/**
 * Vitest global set-up: one scratch directory per `vitest run` for the compiled CLI. Nothing is compiled here:
 * the first test file that needs the CLI compiles it into this directory (see `builtCliBin`), the others reuse
 * that build, and a run with no CLI test pays nothing. The directory goes when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'dsfg-cli-build-'))
  project.provide('cliBuildDir', dir)
  return () => rm(dir, { recursive: true, force: true })
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where this run's compiled CLI lives (see `builtCliBin`). */
    cliBuildDir: string
  }
}
