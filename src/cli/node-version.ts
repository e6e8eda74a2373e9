/**
 * The Node.js version gate of the `dsfg` executable. This module must stay free of imports: `bin.ts` loads it
 * before anything else, on whatever Node runs the shebang, and everything else (libp2p 3, vitest 4, …) needs
 * Node 22 (`Promise.withResolvers` and friends).
 */

/** The lowest Node.js major version DSFG runs on. */
export const MIN_NODE_MAJOR = 22

/**
 * `undefined` when `version` (as in `process.versions.node`, e.g. "22.23.3" or "v20.1.0") is new enough,
 * otherwise the one-line message to print.
 */
export function checkNodeVersion(version: string): string | undefined {
  const match = /^v?(\d+)\.\d+/.exec(version)
  const major = match === null ? Number.NaN : Number(match[1])
  if (major >= MIN_NODE_MAJOR) return undefined
  return (
    `DSFG needs Node.js ${MIN_NODE_MAJOR} or newer, but this is Node.js ${version}; ` +
    `install Node.js ${MIN_NODE_MAJOR}+ (in a clone of DSFG's repository, \`npm run …\` uses the node@${MIN_NODE_MAJOR} ` +
    `it brings as a development dependency)`
  )
}
