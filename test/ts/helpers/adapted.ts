import { join } from "node:path";
import type { Family, Runtime } from "../../../src/index.ts";

/** A base checkpoint (θ1) and one CT-SFT checkpoint per target language (θ2, each keeping its
 * sparse delta in `ctsft-delta/`), all real, built by the runtime from scratch. */
export interface Adapted {
  /** The synthetic task's CSV files: language → split → path. */
  files: Record<string, Record<string, string>>;
  /** θ0: the fresh checkpoint (no task recorded). */
  theta0: string;
  /** θ1: θ0 fine-tuned on the source language. */
  theta1: string;
  /** Language → θ2 checkpoint (θ1 + that language's delta, merged: what `delta merge` gives). */
  theta2: Record<string, string>;
  /** Language → its delta folder (`<θ2>/ctsft-delta`). */
  deltas: Record<string, string>;
  /** The heads the deltas train. */
  heads: [number, number][];
}

export interface AdaptedOptions {
  /** Target languages and their distances from the source (default easy 0.3, hard 0.7). */
  targets?: Record<string, number>;
  family?: Family;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  dModel?: number;
  nTrain?: number;
  /** Test rows per language (default 30). */
  nTest?: number;
  /** CT-SFT mask mechanism per language (default hook for all). */
  mask?: Record<string, "hook" | "delta">;
}

/**
 * The serving tests' fixture: synthetic task → tiny model (θ0) → full SFT on the source (θ1)
 * → per target language a few CT-SFT steps on two heads plus the norms (θ2 and its delta).
 * A few seconds on 2 cores at the default size.
 */
export async function buildAdapted(rt: Runtime, dir: string, opts: AdaptedOptions = {}): Promise<Adapted> {
  const targets = opts.targets ?? { easy: 0.3, hard: 0.7 };
  const nTrain = opts.nTrain ?? 60;
  const files = (await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0, ...targets }, nTrain, nValid: 20, nTest: opts.nTest ?? 30 })).files;
  const layers = opts.layers ?? 2;
  const created = await rt.models.create({
    family: opts.family ?? "llama",
    layers,
    heads: opts.heads ?? 4,
    kvHeads: opts.kvHeads ?? 2,
    dModel: opts.dModel ?? 32,
    corpus: Object.values(files).map((f) => f.train as string),
    vocab: 600,
    out: join(dir, "theta0"),
  });
  const trainOf = (lang: string) => ({ path: (files[lang] as Record<string, string>).train as string });
  const base = await rt.models.load({ source: created.path });
  await rt.train({ model: base, data: trainOf("src"), epochs: 2, lr: 3e-3 }).finalResult();
  const theta1 = (await base.save(join(dir, "theta1"))).path;
  await base.release();

  const heads: [number, number][] = [
    [0, 1],
    [layers - 1, 2],
  ];
  const theta2: Record<string, string> = {};
  const deltas: Record<string, string> = {};
  for (const lang of Object.keys(targets)) {
    const m = await rt.models.load({ source: theta1 });
    await rt.train({ model: m, data: trainOf(lang), method: "ctsft", heads, mask: opts.mask?.[lang] ?? "hook", epochs: 2, lr: 1e-2 }).finalResult();
    const saved = await m.save(join(dir, `theta2-${lang}`));
    if (saved.delta === null) throw new Error(`CT-SFT on ${lang} saved no delta`);
    theta2[lang] = saved.path;
    deltas[lang] = saved.delta;
    await m.release();
  }
  return { files, theta0: created.path, theta1, theta2, deltas, heads };
}

/** `a` and `b` agree elementwise within `rel` relative tolerance (of the larger magnitude, floored at 1). */
export function closeTo(a: readonly number[], b: readonly number[], rel = 1e-5): boolean {
  return a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] as number)) <= rel * Math.max(1, Math.abs(x), Math.abs(b[i] as number)));
}
