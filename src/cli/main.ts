/**
 * The `ctsft` command line, on commander. Importing this module runs it on `process.argv`
 * (bin/ctsft.js imports it) and sets `process.exitCode`:
 * - 0: done (also `--help`, `--version`, `help`);
 * - 1: the work failed: any error from the SDK or the runtime (a CtsftError, printed as one
 *   line `ctsft: NAME (code): message`), including BadRequestError about what the flags
 *   name (a folder ctsft may not replace, a missing or unbalanced dataset, a bad config);
 *   any other error too (one line; `CTSFT_DEBUG=1` adds the stack); `doctor` when the
 *   process mode does not start; `serve` with the server's own exit code; `setup` cancelled
 *   with Ctrl-C is 130;
 * - 2: a usage error, found before any work: an unknown command or option, a missing
 *   required option or value, a value that is not a number / not one of the choices, extra
 *   arguments, a flag that does not apply to the chosen method, conflicting rules; printed as
 *   `CMD: error: …` followed by the command's usage line.
 */
import { run } from "./program.ts";

// `ctsft --help | head`: the reader closed the pipe; that is not our failure.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = await run(process.argv.slice(2));
