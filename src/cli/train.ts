import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { dataArg, need, num, parse } from "./args.ts";
import { ProgressBar, seconds } from "./progress.ts";

const USAGE = "ctsft train --model DIR --data FILE|nusax:LANG [--valid FILE] --epochs N --lr X [--batch-size B] [--seed S] --out DIR [--json]";

/** `ctsft train`: full fine-tuning of a checkpoint, saved as a plain HF checkpoint. */
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
      out: { type: "string" },
      device: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const out = resolve(need(values.out, "--out", USAGE));
  await using rt = await Runtime.start({ device: values.device ?? "auto" });
  const model = await rt.models.load({ source: resolve(need(values.model, "--model", USAGE)) });
  const fileRef = (v: string) => {
    const ref = dataArg(v);
    return "path" in ref ? { path: resolve(ref.path) } : ref;
  };
  const stream = rt.train({
    model,
    data: fileRef(need(values.data, "--data", USAGE)),
    valid: values.valid ? fileRef(values.valid) : undefined,
    epochs: num(values.epochs, "--epochs", 3),
    lr: num(values.lr, "--lr", 5e-4),
    batchSize: num(values["batch-size"], "--batch-size", 16),
    maxLength: num(values["max-length"], "--max-length", 128),
    seed: num(values.seed, "--seed", 0),
  });
  const bar = new ProgressBar("train");
  for await (const e of stream) {
    if (e.type === "step") bar.update(e.step, e.totalSteps, `loss ${e.loss.toFixed(3)} · ${e.examplesPerS.toFixed(0)} ex/s · eta ${seconds(e.eta)}`);
    if (e.type === "epoch" && e.valid) process.stderr.write(`${process.stderr.isTTY ? "\n" : ""}epoch ${e.epoch}: valid accuracy ${(e.valid.accuracy * 100).toFixed(1)}%\n`);
  }
  const { body } = await stream.result;
  bar.done(`trained ${body.paramsTrainable} parameters in ${seconds(body.seconds)}`);
  await model.save(out);
  const summary = {
    method: body.method,
    out,
    epochs: body.epochs,
    steps: body.steps,
    train_loss: body.trainLoss,
    valid_accuracy: body.valid?.accuracy ?? null,
    valid_macro_f1: body.valid?.macroF1 ?? null,
    params_trainable: body.paramsTrainable,
    params_fraction: body.paramsFraction,
    seconds: body.seconds,
  };
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `saved to ${out}\n`);
  return 0;
}
