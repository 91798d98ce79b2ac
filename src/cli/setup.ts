import { Command, Option } from "commander";
import { EXTRAS, type Extra, setup } from "../api/setup.ts";

/** `ctsft setup [--force] [--torch cpu|cuda] [--with ray]`: idempotent; seconds and no network
 * when already done. Progress on stderr, the runtime's Python on stdout. Ctrl-C cancels a build
 * cleanly (the half-built environment is removed) and exits 130. */
export function setupCommand(): Command {
  return new Command("setup")
    .summary("create or update the runtime's Python environment")
    .description(
      "Create or update the runtime's Python environment (idempotent: seconds and no network when it is already up to date). " +
        "Prints the Python that runs the runtime. Ctrl-C cancels a build and removes what it built.",
    )
    .usage("[--force] [--torch cpu|cuda] [--with ray]")
    .option("--force", "rebuild even when it looks up to date", false)
    .addOption(new Option("--torch <VARIANT>", "which torch build (default: $CTSFT_TORCH, else cuda when nvidia-smi lists a GPU)").choices(["cpu", "cuda"]))
    .addOption(new Option("--with <EXTRA...>", "also install an optional extra beside the environment: ray (sweeps on a Ray cluster)").choices([...EXTRAS]))
    .action(async (f: { force: boolean; torch?: "cpu" | "cuda"; with?: Extra[] }) => {
      const abort = new AbortController();
      const cancel = () => abort.abort(new Error("cancelled"));
      process.once("SIGINT", cancel);
      try {
        const result = await setup({ force: f.force, torch: f.torch, with: f.with, signal: abort.signal });
        process.stdout.write(`${result.python}\n`);
      } catch (e) {
        if (!abort.signal.aborted) throw e;
        process.stderr.write("ctsft setup: cancelled\n");
        process.exitCode = 130;
      } finally {
        process.off("SIGINT", cancel);
      }
    });
}
