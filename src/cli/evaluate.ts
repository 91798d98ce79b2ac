import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { dataArg, need, num, parse } from "./args.ts";

const USAGE = "ctsft evaluate --model DIR --data FILE|nusax:LANG:SPLIT [--data ...] [--json]";

/** `ctsft evaluate`: accuracy and macro-F1 of a checkpoint on one or more datasets. */
export async function evaluate(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string", multiple: true },
      "batch-size": { type: "string" },
      device: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const data = values.data ?? [];
  if (data.length === 0) need(undefined, "--data", USAGE);
  await using rt = await Runtime.start({ device: values.device ?? "auto" });
  const model = await rt.models.load({ source: resolve(need(values.model, "--model", USAGE)) });
  const refs = data.map(dataArg);
  const { body } = await rt.evaluate({ model, data: refs, batchSize: num(values["batch-size"], "--batch-size", 64) }).finalResult();
  // `dataset` is the argument as given, so callers can match rows to their inputs.
  const rows = body.results.map((r, i) => ({ dataset: data[i] as string, accuracy: r.accuracy, macro_f1: r.macroF1, n: r.n }));
  if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else for (const r of rows) process.stdout.write(`${r.dataset}: accuracy ${(r.accuracy * 100).toFixed(1)}% · macro-F1 ${(r.macro_f1 * 100).toFixed(1)}% · n=${r.n}\n`);
  return 0;
}
