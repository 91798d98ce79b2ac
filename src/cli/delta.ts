import { resolve } from "node:path";
import { Command } from "commander";
import { Runtime } from "../api/runtime.ts";
import { required } from "./args.ts";

const ACTIONS = {
  apply: "θ1 checkpoint + delta → θ2 checkpoint, with the delta kept beside it (revertible)",
  revert: "θ2 checkpoint + delta → θ1 checkpoint, bit-exact",
  merge: "θ1 checkpoint + delta → θ2 as a plain HF checkpoint only (no delta beside it)",
} as const;

/**
 * `ctsft delta apply|revert|merge`: a CT-SFT sparse delta on checkpoints.
 * `--out` must be absent, empty or a checkpoint ctsft wrote, unless `--overwrite`.
 */
export function deltaCommand(): Command {
  const delta = new Command("delta")
    .summary("a CT-SFT sparse delta on checkpoints: apply | revert | merge")
    .description("A CT-SFT sparse delta on checkpoints. --delta is a delta folder, or a checkpoint that keeps one (`ctsft train --method ctsft` writes it beside θ2).")
    .usage("apply|revert|merge --model DIR --delta DIR --out DIR [--overwrite] [--json]");
  for (const [action, what] of Object.entries(ACTIONS) as [keyof typeof ACTIONS, string][]) {
    delta.addCommand(
      new Command(action)
        .description(what)
        .usage("--model DIR --delta DIR --out DIR [--overwrite] [--json]")
        .addOption(required("--model <DIR>", action === "revert" ? "the θ2 checkpoint" : "the θ1 checkpoint"))
        .addOption(required("--delta <DIR>", "the delta (or a checkpoint keeping one)"))
        .addOption(required("--out <DIR>", "where to save the result"))
        .option("--overwrite", "replace --out even if it holds files ctsft did not write", false)
        .option("--json", "print one JSON summary on stdout", false)
        .action(async (f: { model: string; delta: string; out: string; overwrite: boolean; json: boolean }) => {
          const deltaPath = resolve(f.delta);
          const out = resolve(f.out);
          await using rt = await Runtime.start({ device: "cpu" });
          const model = await rt.models.load({ source: resolve(f.model) });
          await model.save(out, { overwrite: f.overwrite, dryRun: true }); // refuse a bad --out before touching the model
          // A merge is an export: the delta is not kept with the model, so only the plain checkpoint is written.
          const done = action === "revert" ? await model.revertDelta(deltaPath) : await model.applyDelta(deltaPath, { keep: action === "apply" });
          const saved = await model.save(out, { overwrite: f.overwrite });
          const summary = { action, out: saved.path, delta: saved.delta, entries: done.entries, params: done.params };
          process.stdout.write(f.json ? `${JSON.stringify(summary)}\n` : `${action}: ${done.params} parameters in ${done.entries} slices → ${saved.path}\n`);
        }),
    );
  }
  return delta;
}
