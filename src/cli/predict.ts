import { Command, InvalidArgumentError, Option } from "commander";
import Table from "cli-table3";
import { Runtime } from "../api/runtime.ts";
import type { Example } from "../schema/data.ts";
import type { PredictResult } from "../schema/serving.ts";
import { loadAdapted } from "./adapted.ts";
import { fieldsOption, labelMapOption, numberOption, required, type TaskFlags, taskData, templateOption, usageError } from "./args.ts";
import { Progress } from "./output.ts";

interface PredictFlags extends TaskFlags {
  model: string;
  delta?: string;
  text?: string[];
  record?: Record<string, string>[];
  data?: string;
  labels?: string[];
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
    .usage("--model DIR [--delta DIR] (--text T... | --record JSON... | --data FILE|nusax:LANG:SPLIT) [--template T --fields F=COL,... --label-map RAW=LABEL,...] [--labels L...] [--batch-size N] [--json]")
    .addOption(required("--model <DIR>", "the checkpoint (θ1, or any checkpoint with a task)"))
    .option("--delta <DIR>", "a CT-SFT delta to apply per row (the base weights are not changed)")
    .addOption(new Option("--text <T...>", "texts to classify").conflicts(["data", "record"]))
    .addOption(new Option("--record <JSON...>", 'pair-input tasks: records to classify, each a JSON object of the fields, e.g. \'{"premise": "…", "hypothesis": "…"}\'').argParser(recordParser).conflicts("data"))
    .option("--data <FILE|nusax:LANG:SPLIT>", "a dataset whose texts to classify")
    .option("--labels <L...>", "label names, when the checkpoint has no task recorded (default: its task's labels)")
    .addOption(templateOption("the checkpoint's"))
    .addOption(fieldsOption())
    .addOption(labelMapOption())
    .addOption(numberOption("--batch-size <N>", "texts per forward pass", 32))
    .addOption(numberOption("--max-length <T>", "tokens per prompt (a longer text is cut and flagged)", 128))
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .option("--json", "print {labels, predictions} as one JSON object on stdout", false)
    .action(async (f: PredictFlags, cmd: Command) => {
      const examples: Example[] | undefined = f.text ?? f.record;
      if (examples === undefined && f.data === undefined) usageError(cmd, "give --text T..., --record JSON... or --data FILE");
      await using rt = await Runtime.start({ device: f.device });
      const { model, delta } = await loadAdapted(rt, f);
      const stream = model.predictStream(examples ?? taskData(f.data as string, f), { delta, labels: f.labels, template: f.template, batchSize: f.batchSize, maxLength: f.maxLength });
      using progress = new Progress();
      for await (const e of stream) if (f.data !== undefined) progress.update("predict", e.done, e.total);
      progress.stop();
      const { body } = await stream.result;
      const shown = examples?.map(exampleText);
      process.stdout.write(f.json ? `${JSON.stringify(asJson(body, examples))}\n` : `${predictionsTable(body, shown)}\n`);
    });
}

/** One `--record`: a JSON object of strings (the fields). Repeated flags collect into a list. */
function recordParser(value: string, previous: Record<string, string>[] | undefined): Record<string, string>[] {
  let record: unknown;
  try {
    record = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`--record takes a JSON object, got ${JSON.stringify(value)}`);
  }
  if (typeof record !== "object" || record === null || Array.isArray(record) || !Object.values(record).every((v) => typeof v === "string")) {
    throw new InvalidArgumentError(`--record takes a JSON object of strings (field → text), got ${JSON.stringify(value)}`);
  }
  return [...(previous ?? []), record as Record<string, string>];
}

/** A row's text for the table: the text, or a record's fields joined. */
function exampleText(e: Example): string {
  return typeof e === "string" ? e : Object.values(e).join(" | ");
}

/** The result with each row's number, and its text (or record) when given on the command line. */
function asJson(r: PredictResult, texts: Example[] | undefined) {
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
