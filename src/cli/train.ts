import { resolve } from "node:path";
import { Runtime, type TrainOptions } from "../api/runtime.ts";
import { BadRequestError } from "../errors.ts";
import { dataArg, need, num, parse } from "./args.ts";
import { ProgressBar, seconds } from "./progress.ts";

const USAGE =
  "ctsft train --model DIR --data FILE|nusax:LANG [--valid FILE] [--method full|ctsft|norms|lora] [--circuit circuit.json | --heads L:H,...] [--mask hook|delta] [--kv group|frozen] [--lora-r R --lora-alpha A --lora-targets m1,m2] --epochs N --lr X [--batch-size B] [--seed S] --out DIR [--overwrite] [--json]";

/** `ctsft train`: full fine-tuning of a checkpoint, saved as a plain HF checkpoint. `--out`
 * must be absent, empty or a checkpoint ctsft wrote (else `--overwrite`); that is checked
 * before training starts, so a refusal costs no training time. */
export async function train(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      valid: { type: "string" },
      epochs: { type: "string" },
      lr: { type: "string" },
      "batch-size": { type: "string" },
      "max-length": { type: "string" },
      seed: { type: "string" },
      method: { type: "string", default: "full" },
      circuit: { type: "string" },
      heads: { type: "string" },
      mask: { type: "string" },
      kv: { type: "string" },
      "lora-r": { type: "string" },
      "lora-alpha": { type: "string" },
      "lora-targets": { type: "string" },
      out: { type: "string" },
      overwrite: { type: "boolean", default: false },
      device: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const out = resolve(need(values.out, "--out", USAGE));
  await using rt = await Runtime.start({ device: values.device ?? "auto" });
  const model = await rt.models.load({ source: resolve(need(values.model, "--model", USAGE)) });
  const overwrite = values.overwrite === true;
  await model.save(out, { overwrite, dryRun: true }); // refuse a bad --out before any training
  const common = {
    model,
    data: dataArg(need(values.data, "--data", USAGE)),
    valid: values.valid ? dataArg(values.valid) : undefined,
    epochs: num(values.epochs, "--epochs", 3),
    lr: num(values.lr, "--lr", 5e-4),
    batchSize: num(values["batch-size"], "--batch-size", 16),
    maxLength: num(values["max-length"], "--max-length", 128),
    seed: num(values.seed, "--seed", 0),
  };
  const stream = rt.train(methodOptions(values, common));
  const bar = new ProgressBar("train");
  for await (const e of stream) {
    if (e.type === "step") bar.update(e.step, e.totalSteps, `loss ${e.loss.toFixed(3)} · ${e.examplesPerS.toFixed(0)} ex/s · eta ${seconds(e.eta)}`);
    if (e.type === "epoch" && e.valid) process.stderr.write(`${process.stderr.isTTY ? "\n" : ""}epoch ${e.epoch}: valid accuracy ${(e.valid.accuracy * 100).toFixed(1)}%\n`);
  }
  const { body } = await stream.result;
  bar.done(`trained ${body.paramsTrainable} parameters in ${seconds(body.seconds)}`);
  const saved = await model.save(out, { overwrite });
  const summary = {
    method: body.method,
    out,
    delta: saved.delta,
    adapter: saved.adapter,
    heads: body.mask?.heads ?? null,
    touched_heads: body.mask?.touchedHeads ?? null,
    epochs: body.epochs,
    steps: body.steps,
    train_loss: body.trainLoss,
    valid_accuracy: body.valid?.accuracy ?? null,
    valid_macro_f1: body.valid?.macroF1 ?? null,
    params_trainable: body.paramsTrainable,
    params_fraction: body.paramsFraction,
    seconds: body.seconds,
    examples_per_s: body.examplesPerS,
    peak_memory_bytes: body.peakMemory.bytes,
  };
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `saved to ${out}\n`);
  return 0;
}

/** The per-method part of the request, from flags; flags of another method are refused. */
function methodOptions(values: Record<string, string | boolean | undefined>, common: Omit<TrainOptions, "method">): TrainOptions {
  const str = (k: string) => values[k] as string | undefined;
  const method = str("method") ?? "full";
  const only = (flags: string[], owner: string) => {
    for (const f of flags) if (values[f] !== undefined) throw new BadRequestError(`--${f} applies to --method ${owner}, not ${method}`, { path: `--${f}` });
  };
  if (method !== "ctsft") only(["circuit", "heads", "kv"], "ctsft");
  if (method !== "ctsft" && method !== "norms") only(["mask"], "ctsft or norms");
  if (method !== "lora") only(["lora-r", "lora-alpha", "lora-targets"], "lora");
  const mask = str("mask") as "hook" | "delta" | undefined;
  switch (method) {
    case "full":
      return { ...common, method };
    case "norms":
      return { ...common, method, mask };
    case "ctsft": {
      const heads = str("heads")?.split(",").map((lh) => lh.split(":").map(Number) as [number, number]);
      const circuit = str("circuit");
      return { ...common, method, circuit: circuit && resolve(circuit), heads, mask, kv: str("kv") as "group" | "frozen" | undefined };
    }
    case "lora": {
      const targets = str("lora-targets")?.split(",");
      return { ...common, method, lora: { r: num(str("lora-r"), "--lora-r", 8), alpha: num(str("lora-alpha"), "--lora-alpha", 16), targets } };
    }
    default:
      throw new BadRequestError(`--method must be full, ctsft, norms or lora, got ${JSON.stringify(method)}`, { path: "--method" });
  }
}
