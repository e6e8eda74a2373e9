/**
 * The logging the pure cores take: libp2p's `Logger` fits it (the service hands them `dsfg:*` loggers from
 * `components.logger`), and they import nothing from libp2p. A message is a `debug` format string (`%s`, `%d`,
 * `%e` for an error, …).
 */
export interface Log {
  (formatter: string, ...args: unknown[]): void
  error(formatter: string, ...args: unknown[]): void
}

/** Logs nothing: the default where no logger is given. */
export const silentLog: Log = Object.assign(() => undefined, { error: () => undefined })
