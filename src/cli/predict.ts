import { Command, Option } from "commander";
import Table from "cli-table3";
import { Runtime } from "../api/runtime.ts";
import type { PredictResult } from "../schema/serving.ts";
import { loadAdapted } from "./adapted.ts";
import { dataArg, numberOption, required, usageError } from "./args.ts";
import { Progress } from "./output.ts";

interface PredictFlags {
  model: string;
  delta?: string;
  text?: string[];
  data?: string;
  labels?: string[];
  template?: string;
  batchSize: number;
  maxLength: number;
  device: string;
  json: boolean;
}

/** `ctsft predict`: the labels a checkpoint (optionally with a CT-SFT delta) gives texts or a
 * dataset's texts, as a table or JSON on stdout. */
export function predictCommand(): Command {
  return new Command("predict")
    .summary("classify texts with a checkpoint, optionally with a CT-SFT delta")
    .description(
      "Classify texts (--text, several after one flag or the flag repeated) or a dataset's texts (--data; its labels are not used) with a checkpoint, " +
        "optionally with a CT-SFT delta on top (--delta: a ctsft-delta folder, or a checkpoint keeping one; it must have been trained from --model). " +
        "Prints one row per text: the label and each class's probability; --json prints the labels and the predictions with their logits.",
    )
    .usage("--model DIR [--delta DIR] (--text T... | --data FILE|nusax:LANG:SPLIT) [--labels L...] [--batch-size N] [--json]")
    .addOption(required("--model <DIR>", "the checkpoint (θ1, or any checkpoint with a task)"))
    .option("--delta <DIR>", "a CT-SFT delta to apply per row (the base weights are not changed)")
    .addOption(new Option("--text <T...>", "texts to classify").conflicts("data"))
    .option("--data <FILE|nusax:LANG:SPLIT>", "a dataset whose texts to classify")
    .option("--labels <L...>", "label names, when the checkpoint has no task recorded (default: its task's labels)")
    .option("--template <T>", "prompt template with one {text} slot (default: the checkpoint's)")
    .addOption(numberOption("--batch-size <N>", "texts per forward pass", 32))
    .addOption(numberOption("--max-length <T>", "tokens per prompt (a longer text is cut and flagged)", 128))
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .option("--json", "print {labels, predictions} as one JSON object on stdout", false)
    .action(async (f: PredictFlags, cmd: Command) => {
      if (f.text === undefined && f.data === undefined) usageError(cmd, "give --text T... or --data FILE");
      await using rt = await Runtime.start({ device: f.device });
      const { model, delta } = await loadAdapted(rt, f);
      const stream = model.predictStream(f.text ?? dataArg(f.data as string), { delta, labels: f.labels, template: f.template, batchSize: f.batchSize, maxLength: f.maxLength });
      using progress = new Progress();
      for await (const e of stream) if (f.data !== undefined) progress.update("predict", e.done, e.total);
      progress.stop();
      const { body } = await stream.result;
      process.stdout.write(f.json ? `${JSON.stringify(asJson(body, f.text))}\n` : `${predictionsTable(body, f.text)}\n`);
    });
}

/** The result with each row's number, and its text when the texts were given on the command line. */
function asJson(r: PredictResult, texts: string[] | undefined) {
  return { labels: r.labels, predictions: r.predictions.map((p, row) => ({ row, ...(texts ? { text: texts[row] } : {}), ...p })) };
}

/** One row per text: number, text (shortened), label, each class's probability in %. */
export function predictionsTable(r: PredictResult, texts: string[] | undefined): string {
  const head = ["#", ...(texts ? ["text"] : []), "label", ...r.labels.map((l) => `${l} %`)];
  const table = new Table({ head, style: { head: [], border: [] }, colAligns: ["right", ...(texts ? ["left" as const] : []), "left", ...r.labels.map(() => "right" as const)] });
  r.predictions.forEach((p, row) => {
    const text = texts?.[row] ?? "";
    const shown = text.length > 48 ? `${text.slice(0, 47)}…` : text;
    table.push([String(row), ...(texts ? [shown] : []), p.truncated ? `${p.label} (cut)` : p.label, ...p.probs.map((x) => (x * 100).toFixed(1))]);
  });
  return table.toString();
}
