import { resolve } from "node:path";
import { Command, Option } from "commander";
import { Runtime, type TrainOptions } from "../api/runtime.ts";
import { fieldsOption, given, headsParser, labelMapOption, numberOption, required, type TaskFlags, taskData, templateOption, usageError } from "./args.ts";
import { Progress, seconds } from "./output.ts";

interface TrainFlags extends TaskFlags {
  model: string;
  data: string;
  valid?: string;
  method: "full" | "ctsft" | "norms" | "lora";
  circuit?: string;
  heads?: [number, number][];
  mask: "hook" | "delta";
  kv: "group" | "frozen";
  loraR: number;
  loraAlpha: number;
  loraTargets?: string;
  epochs: number;
  lr: number;
  batchSize: number;
  maxLength: number;
  seed: number;
  device: string;
  out: string;
  overwrite: boolean;
  json: boolean;
}

/** `ctsft train`: fine-tune a checkpoint and save it as a plain HF checkpoint. `--out` must be
 * absent, empty or a checkpoint ctsft wrote (else `--overwrite`); that is checked before
 * training starts, so a refusal costs no training time. */
export function trainCommand(): Command {
  return new Command("train")
    .summary("fine-tune a checkpoint on labeled data and save it")
    .description(
      "Fine-tune a checkpoint on labeled data (full, CT-SFT on a circuit, norms only, or LoRA) and save it as a plain HF checkpoint; " +
        "for ctsft and norms the sparse delta is saved beside it. --out must be new, empty or a folder ctsft wrote (else --overwrite); " +
        "that is checked before training starts.",
    )
    .usage(
      "--model DIR --data FILE|nusax:LANG[:SPLIT] [--valid FILE] [--template T --fields F=COL,... --label-map RAW=LABEL,...] [--method full|ctsft|norms|lora] [--circuit circuit.json | --heads L:H,...] [--mask hook|delta] [--kv group|frozen] [--lora-r R --lora-alpha A --lora-targets m1,m2] [--epochs N] [--lr X] [--batch-size B] [--seed S] --out DIR [--overwrite] [--json]",
    )
    .addOption(required("--model <DIR>", "the checkpoint to fine-tune"))
    .addOption(required("--data <FILE|nusax:LANG[:SPLIT]>", "training data: a CSV/TSV/JSONL file, or a NusaX split from $CTSFT_NUSAX_DIR (split defaults to train)"))
    .option("--valid <FILE|nusax:LANG[:SPLIT]>", "validation data, scored after each epoch")
    .addOption(templateOption())
    .addOption(fieldsOption())
    .addOption(labelMapOption())
    .addOption(new Option("--method <METHOD>", "what to train").choices(["full", "ctsft", "norms", "lora"]).default("full"))
    .option("--circuit <FILE>", "ctsft: the circuit file from `ctsft circuit`")
    .addOption(new Option("--heads <L:H,...>", "ctsft: explicit heads instead of --circuit").argParser(headsParser("--heads")))
    .addOption(new Option("--mask <MECHANISM>", "ctsft, norms: hook = gradient masks on full tensors; delta = per-slice parameters (optimizer state scales with the circuit)").choices(["hook", "delta"]).default("hook"))
    .addOption(new Option("--kv <MODE>", "ctsft: grouped K/V heads trained with their group, or frozen").choices(["group", "frozen"]).default("group"))
    .addOption(numberOption("--lora-r <R>", "lora: rank", 8))
    .addOption(numberOption("--lora-alpha <A>", "lora: alpha", 16))
    .option("--lora-targets <m1,m2>", "lora: module names to adapt (default: the attention projections)")
    .addOption(numberOption("--epochs <N>", "training epochs", 3))
    .addOption(numberOption("--lr <X>", "learning rate", 5e-4))
    .addOption(numberOption("--batch-size <B>", "examples per step", 16))
    .addOption(numberOption("--max-length <T>", "tokens per example (longer ones are truncated)", 128))
    .addOption(numberOption("--seed <S>", "seed of shuffling and initialisation", 0))
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .addOption(required("--out <DIR>", "where to save the trained checkpoint"))
    .option("--overwrite", "replace --out even if it holds files ctsft did not write", false)
    .option("--json", "print one JSON summary on stdout", false)
    .action(async (flags: TrainFlags, cmd: Command) => {
      checkMethodFlags(cmd, flags);
      const out = resolve(flags.out);
      await using rt = await Runtime.start({ device: flags.device });
      const model = await rt.models.load({ source: resolve(flags.model) });
      await model.save(out, { overwrite: flags.overwrite, dryRun: true }); // refuse a bad --out before any training
      const stream = rt.train(trainRequest(flags, model));
      using progress = new Progress();
      for await (const e of stream) {
        if (e.type === "step") progress.update("train", e.step, e.totalSteps, `loss ${e.loss.toFixed(3)} · ${e.examplesPerS.toFixed(0)} ex/s · eta ${seconds(e.eta)}`);
        if (e.type === "epoch" && e.valid) progress.log(`epoch ${e.epoch}: valid accuracy ${(e.valid.accuracy * 100).toFixed(1)}%`);
      }
      const { body } = await stream.result;
      progress.stop(`trained ${body.paramsTrainable} parameters in ${seconds(body.seconds)}`);
      const saved = await model.save(out, { overwrite: flags.overwrite });
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
      process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : `saved to ${out}\n`);
    });
}

/** A flag of another method is a usage error. */
function checkMethodFlags(cmd: Command, f: TrainFlags): void {
  const only = (keys: [string, string][], owner: string) => {
    for (const [key, flag] of keys) if (given(cmd, key)) usageError(cmd, `${flag} applies to --method ${owner}, not ${f.method}`);
  };
  if (f.method !== "ctsft") only([["circuit", "--circuit"], ["heads", "--heads"], ["kv", "--kv"]], "ctsft");
  if (f.method !== "ctsft" && f.method !== "norms") only([["mask", "--mask"]], "ctsft or norms");
  if (f.method !== "lora") only([["loraR", "--lora-r"], ["loraAlpha", "--lora-alpha"], ["loraTargets", "--lora-targets"]], "lora");
}

/** The train request, from flags. */
function trainRequest(f: TrainFlags, model: TrainOptions["model"]): TrainOptions {
  const common = {
    model,
    data: taskData(f.data, f),
    valid: f.valid ? taskData(f.valid, f) : undefined,
    template: f.template,
    epochs: f.epochs,
    lr: f.lr,
    batchSize: f.batchSize,
    maxLength: f.maxLength,
    seed: f.seed,
  };
  switch (f.method) {
    case "full":
      return { ...common, method: "full" };
    case "norms":
      return { ...common, method: "norms", mask: f.mask };
    case "ctsft":
      return { ...common, method: "ctsft", circuit: f.circuit && resolve(f.circuit), heads: f.heads, mask: f.mask, kv: f.kv };
    case "lora":
      return { ...common, method: "lora", lora: { r: f.loraR, alpha: f.loraAlpha, targets: f.loraTargets?.split(",") } };
  }
}
