import { Command } from "commander";
import { setup } from "../api/setup.ts";

/** `ctsft setup [--force]`: idempotent; seconds and no network when already done. */
export function setupCommand(): Command {
  return new Command("setup")
    .summary("create or update the runtime's Python environment")
    .description("Create or update the runtime's Python environment in .venv/ (idempotent: seconds and no network when it is already up to date). Prints the Python it set up.")
    .usage("[--force]")
    .option("--force", "rebuild even when it looks up to date", false)
    .action(async (f: { force: boolean }) => {
      const python = await setup({ force: f.force });
      process.stdout.write(`${python}\n`);
    });
}
