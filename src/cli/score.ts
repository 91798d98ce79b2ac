import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { Runtime } from "../api/runtime.ts";
import { rankHeads, scoreDiagnostics } from "../api/scoring.ts";
import { ScoreMethod } from "../schema/scoring.ts";
import { fieldsOption, labelMapOption, numberOption, numberParser, required, type TaskFlags, taskData, templateOption } from "./args.ts";
import { Progress } from "./output.ts";

/** `--faithfulness N|off`. */
function faithfulnessParser(value: string): { examples: number } | false {
  if (value === "off") return false;
  try {
    return { examples: numberParser("--faithfulness")(value) };
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message} (or off)`);
  }
}

/** `ctsft score`: relevance of every attention head on a discovery set. */
export function scoreCommand(): Command {
  return new Command("score")
    .summary("relevance of every attention head on a discovery set → scores.json")
    .description(
      "Relevance of every attention head on a label-balanced discovery set, written to a scores file for `ctsft circuit`. " +
        "Unless --faithfulness off, the scores are checked against exact mean-ablation on N rows (Spearman), and cdt reports its stability.",
    )
    .usage("--model DIR --data FILE|nusax:LANG:SPLIT [--template T --fields F=COL,... --label-map RAW=LABEL,...] [--per-class N] [--method cdt|ablation|attribution|cdt-unsigned] [--faithfulness N|off] --out scores.json [--json]")
    .addOption(required("--model <DIR>", "the checkpoint (θ1: competent on the proxy)"))
    .addOption(required("--data <FILE|nusax:LANG:SPLIT>", "the discovery set (every class present)"))
    .addOption(templateOption())
    .addOption(fieldsOption())
    .addOption(labelMapOption())
    .addOption(numberOption("--per-class <N>", "a balanced subsample of N rows per class (default: every row)"))
    .addOption(new Option("--method <SCORER>", "the scorer").choices(ScoreMethod.options).default("cdt"))
    .addOption(new Option("--faithfulness <N|off>", "Spearman against exact mean-ablation on N rows, or off").argParser(faithfulnessParser).default(true, "64"))
    .addOption(numberOption("--batch-size <B>", "examples per forward pass", 32))
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .addOption(required("--out <FILE>", "the scores file to write"))
    .option("--json", "print the scores file's content as JSON on stdout", false)
    .action(async (f: TaskFlags & { model: string; data: string; perClass?: number; method: ScoreMethod; faithfulness: true | false | { examples: number }; batchSize: number; device: string; out: string; json: boolean }) => {
      const data = { ...taskData(f.data, f), perClass: f.perClass };
      await using rt = await Runtime.start({ device: f.device });
      const model = await rt.models.load({ source: resolve(f.model) });
      const stream = rt.scoring.score({ model, data, template: f.template, method: f.method, faithfulness: f.faithfulness, out: resolve(f.out), batchSize: f.batchSize });
      using progress = new Progress();
      const labels = { baseline: "baseline", scoring: f.method, faithfulness: "faithfulness (ablation)" };
      for await (const e of stream) progress.update(labels[e.phase], e.done, e.total);
      const { body } = await stream.result;
      progress.stop(`scored ${body.model.layers * body.model.heads} heads on ${body.n} examples in ${body.seconds.toFixed(1)} s → ${body.path}`);
      for (const line of scoreDiagnostics(body)) process.stderr.write(`${line}\n`);
      if (f.json) process.stdout.write(`${JSON.stringify(body)}\n`);
      else for (const h of rankHeads(body.scores).slice(0, 10)) process.stdout.write(`L${h.layer}H${h.head}\t${h.score.toFixed(4)}\n`);
    });
}
