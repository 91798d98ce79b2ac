import { resolve } from "node:path";
import { Command } from "commander";
import { type AdaptResult, loadAdaptConfig, runAdapt } from "../api/adapt.ts";
import { Runtime } from "../api/runtime.ts";
import { scoreDiagnostics } from "../api/scoring.ts";
import type { AdaptConfigInput } from "../schema/adapt.ts";
import { required } from "./args.ts";
import { Progress, resultsTable, seconds } from "./output.ts";

/** `ctsft adapt --config FILE`: the whole pipeline on the user's model and data. */
export function adaptCommand(): Command {
  return new Command("adapt")
    .summary("the whole pipeline on your model and data, from a config file (--config FILE)")
    .description(
      "The whole CT-SFT comparison on your model (a directory, hub id or .gguf) and data, from a YAML or JSON config " +
        "(every field with its default: the AdaptConfig type in the API docs, src/schema/adapt.ts; docs/guide.md, `ctsft adapt`, explains them). Prints the results table, verdicts and θ1's scoring checks, and writes a report.",
    )
    .usage("--config FILE.yaml|json [--json]")
    .addOption(required("--config <FILE>", "the config (YAML or JSON)"))
    .option("--json", "print the whole result as one JSON object on stdout", false)
    .action(async (f: { config: string; json: boolean }) => {
      const config = loadAdaptConfig(resolve(f.config));
      await runAndPrint(config, f.json, config.device);
    });
}

/** Run a config with progress on stderr; print the table, verdicts, θ1's scoring checks and
 * warnings, or one JSON object. */
export async function runAndPrint(config: AdaptConfigInput, json: boolean, device = "auto", title?: string): Promise<void> {
  await using rt = await Runtime.start({ device });
  using progress = new Progress();
  const result: AdaptResult = await runAdapt(rt, config, { log: (l) => progress.log(l), onRun: (d, t) => progress.update("runs", d, t), title });
  progress.stop(`done in ${seconds(result.seconds)}; report: ${result.report.html}`);
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const lines = [
    resultsTable(result.methods),
    "",
    ...result.verdicts.map((v) => v.text),
    ...result.strategy.map((s) => `auto: ${s.reason}`),
    ...scoreDiagnostics({ method: result.fallbackFrom ?? result.scorer, faithfulness: result.faithfulness, stability: result.stability }),
    "",
    `report: ${result.report.markdown}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
