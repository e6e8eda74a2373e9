// Lets Node 22 run the TypeScript benchmarks straight from src/: types are stripped by Node itself, and this
// hook maps the `./x.js` specifiers the sources use (what tsc wants) to their `./x.ts` files.
// Use: node --experimental-transform-types --import ./bench/register.mjs bench/<name>.ts (the npm bench:* scripts do)
import { register } from 'node:module'

const hook = `export async function resolve(specifier, context, next) {
  try { return await next(specifier, context) } catch (err) {
    if (!specifier.endsWith('.js') || !context.parentURL?.startsWith('file:')) throw err
    return next(specifier.slice(0, -3) + '.ts', context)
  }
}`
register(`data:text/javascript,${encodeURIComponent(hook)}`)
