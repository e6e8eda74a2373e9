import { UsageError } from '../errors.js'

/**
 * One `--name` option of a command. The table of a command's options is the single source for parsing, the
 * usage line and `dsfg <command> --help`.
 */
export interface OptionSpec {
  /** `boolean` options take no value (`--secure`); `string` options take exactly one (`--data DIR`). */
  readonly type: 'boolean' | 'string'
  /** Placeholder for the value in help, e.g. `DIR` or `0x…`. */
  readonly value?: string
  /** The option must be given (at least once when `multiple`). Meaningless for `boolean`. */
  readonly required?: boolean
  /** The option may be repeated (`--peer A --peer B`); its parsed value is then an array. */
  readonly multiple?: boolean
  /** One line for `--help`. */
  readonly description: string
}

/** A positional argument, in order. Optional positionals must come last. */
export interface PositionalSpec {
  readonly name: string
  readonly description: string
  readonly optional?: boolean
}

export type OptionTable = Readonly<Record<string, OptionSpec>>

type OptionValue<S extends OptionSpec> = S extends { readonly type: 'boolean' }
  ? boolean
  : S extends { readonly multiple: true }
    ? string[]
    : S extends { readonly required: true }
      ? string
      : string | undefined

/** Parsed option values, typed from the table: `boolean`, `string`, `string | undefined` or `string[]`. */
export type ParsedOptions<T extends OptionTable> = { -readonly [K in keyof T]: OptionValue<T[K]> }

export interface ParsedArgs<T extends OptionTable> {
  readonly options: ParsedOptions<T>
  readonly positionals: readonly string[]
}

const HELP_FLAGS: ReadonlySet<string> = new Set(['--help', '-h'])

/** True when `argv` asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false
    if (HELP_FLAGS.has(arg)) return true
  }
  return false
}

function isOptionLike(arg: string): boolean {
  // A lone '-' is a positional meaning standard input. A negative number is a value, so that `--wait -1` is
  // refused by the number's own check ("must be a whole number") rather than as a missing value.
  return arg.length > 1 && arg.startsWith('-') && !/^-\d/.test(arg)
}

function display(name: string, spec: OptionSpec): string {
  return spec.type === 'string' ? `--${name} ${spec.value ?? 'VALUE'}` : `--${name}`
}

/**
 * Strict parsing of `argv` (the arguments after the command name) against `options` and `positionals`.
 * Accepts `--name value`, `--name=value` and `--` (everything after it is positional). Throws `UsageError` for
 * an unknown option, a missing or superfluous value, a repeated single-valued option, a missing required
 * option, and too few or too many positionals. `--help` is not handled here: check `wantsHelp` first.
 */
export function parseArgs<const T extends OptionTable>(
  argv: readonly string[],
  options: T,
  positionals: readonly PositionalSpec[] = []
): ParsedArgs<T> {
  const values = new Map<string, string[] | boolean>()
  const rest: string[] = []

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      rest.push(...argv.slice(i + 1))
      break
    }
    if (!isOptionLike(arg)) {
      rest.push(arg)
      continue
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`)

    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    const spec = Object.hasOwn(options, name) ? options[name] : undefined
    if (spec === undefined) throw new UsageError(`unknown option --${name}`)

    if (spec.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`)
      if (values.has(name) && spec.multiple !== true) throw new UsageError(`option --${name} given more than once`)
      values.set(name, true)
      continue
    }

    let value: string
    if (eq !== -1) {
      value = arg.slice(eq + 1)
    } else {
      const next = argv[i + 1]
      // `--key --proof` is a forgotten value, not a key called "--proof".
      if (next === undefined || next === '--' || isOptionLike(next)) {
        throw new UsageError(`option ${display(name, spec)} needs a value`)
      }
      value = next
      i++
    }
    // An empty value (`--data ''`, `--data=`) is a value forgotten too: no option takes one.
    if (value === '') throw new UsageError(`option ${display(name, spec)} needs a value`)
    const previous = values.get(name)
    if (Array.isArray(previous)) {
      if (spec.multiple !== true) throw new UsageError(`option --${name} given more than once`)
      previous.push(value)
    } else {
      values.set(name, [value])
    }
  }

  const parsed: Record<string, string[] | string | boolean | undefined> = {}
  for (const [name, spec] of Object.entries(options)) {
    const value = values.get(name)
    if (spec.type === 'boolean') {
      parsed[name] = value === true
      continue
    }
    const list = Array.isArray(value) ? value : []
    if (spec.required === true && list.length === 0) {
      throw new UsageError(`missing required option ${display(name, spec)}`)
    }
    parsed[name] = spec.multiple === true ? list : list[0]
  }

  const required = positionals.filter((p) => p.optional !== true).length
  if (rest.length < required) throw new UsageError(`missing argument ${positionals[rest.length]!.name}`)
  if (rest.length > positionals.length) throw new UsageError(`unexpected argument ${rest[positionals.length]}`)

  return { options: parsed as ParsedOptions<T>, positionals: rest }
}

/** The synopsis of a command, e.g. `dsfg import --data DIR [--secure] FILE`. */
export function formatUsage(command: string, options: OptionTable, positionals: readonly PositionalSpec[]): string {
  const parts = [`dsfg ${command}`]
  for (const [name, spec] of Object.entries(options)) {
    const shown = display(name, spec) + (spec.multiple === true ? '…' : '')
    parts.push(spec.required === true && spec.type === 'string' ? shown : `[${shown}]`)
  }
  for (const p of positionals) parts.push(p.optional === true ? `[${p.name}]` : p.name)
  return parts.join(' ')
}

function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length))
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`)
}

/** The text of `dsfg <command> --help`, generated from the command's tables. */
export function formatCommandHelp(
  command: string,
  description: string,
  options: OptionTable,
  positionals: readonly PositionalSpec[]
): string {
  const lines = [`Usage: ${formatUsage(command, options, positionals)}`, '', description]
  if (positionals.length > 0) {
    lines.push('', 'Arguments:', ...table(positionals.map((p) => [p.name, p.description] as const)))
  }
  const optionRows = Object.entries(options).map(
    ([name, spec]) =>
      [display(name, spec) + (spec.multiple === true ? '…' : ''), spec.description + (spec.required === true ? ' (required)' : '')] as const
  )
  optionRows.push(['-h, --help', 'show this help'])
  lines.push('', 'Options:', ...table(optionRows))
  return lines.join('\n') + '\n'
}
