/** A tiny real model and the synthetic task, made by the runtime itself, for benchmarks. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Family, ModelHandle, Runtime } from "../src/index.ts";

export interface TinySetup {
  dir: string;
  files: Record<string, Record<string, string>>;
  model: ModelHandle;
}

/** Synthetic task + a Llama-family checkpoint built from scratch, loaded and (optionally) trained on the source. */
export async function tinySetup(rt: Runtime, opts: { layers?: number; heads?: number; kvHeads?: number; dModel?: number; nTrain?: number; train?: boolean } = {}): Promise<TinySetup> {
  const dir = mkdtempSync(join(tmpdir(), "ctsft-bench-"));
  const files = (await rt.data.synthetic({ out: join(dir, "data"), nTrain: opts.nTrain ?? 300, nValid: 96, nTest: 192 })).files;
  const src = files.src as Record<string, string>;
  const created = await rt.models.create({
    family: "llama",
    layers: opts.layers ?? 2,
    heads: opts.heads ?? 4,
    kvHeads: opts.kvHeads,
    dModel: opts.dModel ?? 64,
    corpus: Object.values(files).map((f) => f.train as string),
    vocab: 800,
    out: join(dir, "model"),
  });
  const model = await rt.models.load({ source: created.path });
  if (opts.train ?? true) await rt.train({ model, data: { path: src.train as string }, epochs: 4, lr: 3e-3 }).finalResult();
  return { dir, files, model };
}

/** A tiny model (Llama unless `family` says otherwise; 4 layers × 4 heads, d_model 64) built
 * from scratch with a tokenizer on NusaX ind/jav/sun text and trained on ind (θ1): the model
 * of the NusaX studies. `seed` seeds both the initialization and the training order. */
export async function nusaxTheta1(
  rt: Runtime,
  nusax: string,
  dir: string,
  opts: { epochs: number; family?: Family; kvHeads?: number; seed?: number },
): Promise<ModelHandle> {
  const seed = opts.seed ?? 0;
  const created = await rt.models.create({
    family: opts.family ?? "llama",
    layers: 4,
    heads: 4,
    kvHeads: opts.kvHeads,
    dModel: 64,
    corpus: ["ind", "jav", "sun"].map((l) => join(nusax, l, "train.csv")),
    vocab: 2000,
    out: join(dir, `theta0-${opts.family ?? "llama"}-${seed}`),
    seed,
  });
  const model = await rt.models.load({ source: created.path });
  await rt.train({ model, data: { nusax: { lang: "ind", split: "train", dir: nusax } }, epochs: opts.epochs, lr: 1e-3, seed }).finalResult();
  return model;
}
