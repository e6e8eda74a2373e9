/**
 * Process exit codes of the `dsfg` executable. Import-free, because `bin.ts` needs one before the Node version
 * check has passed.
 */
export const EXIT_OK = 0
/** The input data, a proof, the store or a file is bad or missing: the command line itself was fine. */
export const EXIT_FAILURE = 1
/** The command line is wrong (unknown command or option, missing argument, bad flag value) or Node is too old. */
export const EXIT_USAGE = 2
/** Stopped by SIGINT: 128 + 2, what a shell reports for a process SIGINT ended. */
export const EXIT_SIGINT = 130
/** Stopped by SIGTERM: 128 + 15. */
export const EXIT_SIGTERM = 143
/** Standard output was closed early (a pipe's reader left, as `| head` does): 128 + SIGPIPE's 13, with no message. */
export const EXIT_PIPE = 141
