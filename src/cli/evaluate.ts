import { resolve } from "node:path";
import { Command } from "commander";
import { Runtime } from "../api/runtime.ts";
import { fieldsOption, labelMapOption, numberOption, required, type TaskFlags, taskData, templateOption } from "./args.ts";

/** `ctsft evaluate`: accuracy and macro-F1 of a checkpoint on one or more datasets. */
export function evaluateCommand(): Command {
  return new Command("evaluate")
    .summary("accuracy and macro-F1 of a checkpoint on datasets")
    .description("Accuracy and macro-F1 of a checkpoint on one or more datasets, one line (or JSON row) per dataset, in the order given.")
    .usage("--model DIR --data FILE|nusax:LANG:SPLIT... [--template T --fields F=COL,... --label-map RAW=LABEL,...] [--batch-size B] [--device D] [--json]")
    .addOption(required("--model <DIR>", "the checkpoint"))
    .addOption(required("--data <FILE|nusax:LANG:SPLIT...>", "datasets (several after one --data, or --data repeated)"))
    .addOption(templateOption())
    .addOption(fieldsOption())
    .addOption(labelMapOption())
    .addOption(numberOption("--batch-size <B>", "examples per forward pass", 64))
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .option("--json", "print the rows as one JSON array on stdout", false)
    .action(async (f: TaskFlags & { model: string; data: string[]; batchSize: number; device: string; json: boolean }) => {
      await using rt = await Runtime.start({ device: f.device });
      const model = await rt.models.load({ source: resolve(f.model) });
      const { body } = await rt.evaluate({ model, data: f.data.map((d) => taskData(d, f)), template: f.template, batchSize: f.batchSize }).finalResult();
      // `dataset` is the argument as given, so callers can match rows to their inputs.
      const rows = body.results.map((r, i) => ({ dataset: f.data[i] as string, accuracy: r.accuracy, macro_f1: r.macroF1, n: r.n }));
      if (f.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else for (const r of rows) process.stdout.write(`${r.dataset}: accuracy ${(r.accuracy * 100).toFixed(1)}% · macro-F1 ${(r.macro_f1 * 100).toFixed(1)}% · n=${r.n}\n`);
    });
}
