/**
 * The logging the pure cores take: libp2p's `Logger` fits it (the service hands them `dsfg:*` loggers from
 * `components.logger`), and they import nothing from libp2p. A message is a `debug` format string (`%s`, `%d`,
 * `%e` for an error, …), formatted only when its logger is enabled, so a format string costs next to nothing
 * when it is not; anything else worth computing only for a log line goes behind `enabled`.
 *
 * Levels: `error` for our own failures (a store write, a hook that threw, a bug); the plain call (debug) for
 * what peers did (a failed request, a bad reply, a penalty) and for the sync's milestones; `trace` for what is
 * expected and only interesting when chasing something (an abort, a stream closed after its reply).
 */
export interface Log {
  (formatter: string, ...args: unknown[]): void
  error(formatter: string, ...args: unknown[]): void
  trace(formatter: string, ...args: unknown[]): void
  /** Whether debug lines are written. */
  enabled: boolean
  /** A logger named below this one: `dsfg:state-sync` scopes `trie` as `dsfg:state-sync:trie`. */
  newScope(name: string): Log
}

/** Logs nothing: the default where no logger is given. */
export const silentLog: Log = Object.assign(() => undefined, {
  error: () => undefined,
  trace: () => undefined,
  enabled: false,
  newScope: (): Log => silentLog
})
