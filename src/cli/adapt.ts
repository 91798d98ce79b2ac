import { resolve } from "node:path";
import { type AdaptResult, loadAdaptConfig, runAdapt } from "../api/adapt.ts";
import { Runtime } from "../api/runtime.ts";
import { scoreDiagnostics } from "../api/scoring.ts";
import type { AdaptConfigInput } from "../schema/adapt.ts";
import { need, parse } from "./args.ts";
import { ProgressBar, seconds } from "./progress.ts";
import { resultsTable } from "./table.ts";

const USAGE = "ctsft adapt --config FILE.yaml|json [--json]";

/** `ctsft adapt --config FILE`: the whole pipeline on the user's model and data. */
export async function adapt(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: "string" }, json: { type: "boolean", default: false } }, USAGE);
  const config = loadAdaptConfig(resolve(need(values.config, "--config", USAGE)));
  return runAndPrint(config, values.json === true, config.device);
}

/** Run a config with progress on stderr; print the table, verdicts, θ1's scoring checks and
 * warnings, or one JSON object. */
export async function runAndPrint(config: AdaptConfigInput, json: boolean, device = "auto", title?: string): Promise<number> {
  await using rt = await Runtime.start({ device });
  const bar = new ProgressBar("runs");
  const log = (l: string) => process.stderr.write(`${process.stderr.isTTY ? "\r\x1b[K" : ""}${l}\n`);
  const result: AdaptResult = await runAdapt(rt, config, { log, onRun: (d, t) => bar.update(d, t), title });
  bar.done(`done in ${seconds(result.seconds)}; report: ${result.report.html}`);
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const lines = [
    resultsTable(result.methods),
    "",
    ...result.verdicts.map((v) => v.text),
    ...result.strategy.map((s) => `auto: ${s.reason}`),
    ...scoreDiagnostics({ method: result.scorer, faithfulness: result.faithfulness, stability: result.stability }),
    "",
    `report: ${result.report.markdown}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
