import { join } from "node:path";
import type { DataRef } from "../schema/data.ts";
import type { ScoreMethod } from "../schema/scoring.ts";
import type { Runtime, TrainOptions } from "./runtime.ts";

/** The methods a comparison can run; `ctsft-low` and `random` are CT-SFT with a circuit of that strategy. */
export type CompareMethod = "full" | "ctsft" | "ctsft-low" | "random" | "norms" | "lora";

/** A target language: its training set (the few target examples) and test set. */
export interface CompareTarget {
  name: string;
  train: DataRef;
  test: DataRef;
  /** Target validation set: when given, each run is also scored here (strategy `auto` chooses by it). */
  valid?: DataRef;
}

/** What {@link compareMethods} needs: θ1 (competent on the proxy), data, and the plan. */
export interface CompareOptions {
  /** The θ1 checkpoint directory. */
  model: string;
  /** Label-balanced discovery set for scoring (proxy language). */
  discovery: DataRef;
  /** Proxy-language test set: forgetting is measured here. */
  sourceTest: DataRef;
  targets: CompareTarget[];
  methods: CompareMethod[];
  seeds: number[];
  /** Directory for scores and circuit files. */
  workDir: string;
  scorer?: ScoreMethod;
  /** Circuit size (heads) for ctsft, ctsft-low and random. */
  topK?: number;
  epochs?: number;
  /** Learning rate per method (defaults: full 5e-4, head methods 2e-3, norms 1e-2, lora 2e-3). */
  lr?: Partial<Record<CompareMethod, number>>;
  batchSize?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Called after every finished run (a method on a target with a seed). */
  onRun?: (run: CompareRun) => void;
}

/** One training run's measurements. */
export interface CompareRun {
  method: CompareMethod;
  target: string;
  seed: number;
  targetAcc: number;
  /** Accuracy on the target's validation set, when it has one. */
  validAcc: number | null;
  sourceAccAfter: number;
  paramsFraction: number;
  seconds: number;
  heads: [number, number][] | null;
  touchedHeads: [number, number][] | null;
  /** Training loss at every optimizer step. */
  losses: number[];
}

/** Per method and target: means and standard deviations over seeds, and paired differences against `full`. */
export interface CompareRow {
  name: CompareMethod;
  target: string;
  seeds: number;
  /** θ1's accuracy on the target before any target training (zero-shot transfer). */
  target_acc_before: number;
  target_acc: number;
  target_acc_std: number;
  source_acc_before: number;
  source_acc_after: number;
  forgetting: number;
  forgetting_std: number;
  /** Mean over seeds of (forgetting − full's forgetting on the same seed); null for full itself. */
  forgetting_vs_full: number | null;
  forgetting_vs_full_std: number | null;
  target_vs_full: number | null;
  target_vs_full_std: number | null;
  params_fraction: number;
  seconds: number;
}

export interface CompareResult {
  methods: CompareRow[];
  runs: CompareRun[];
  sourceAccBefore: number;
  /** Relevance per head, `[layers][heads]` (null = not scored). */
  scores: (number | null)[][];
  circuit: [number, number][];
  low: [number, number][];
  scorer: ScoreMethod;
}

const DEFAULT_LR: Record<CompareMethod, number> = { full: 5e-4, ctsft: 2e-3, "ctsft-low": 2e-3, random: 2e-3, norms: 1e-2, lora: 2e-3 };

/**
 * The paper's comparison on one θ1: score heads, select the circuit, the low-relevance and
 * random circuits of the same size, then for each target, seed and method train θ1 → θ2 on
 * the target set and measure target accuracy and source forgetting. Every run starts from a
 * fresh load of θ1; the same data and budget go to every method.
 */
export async function compareMethods(rt: Runtime, o: CompareOptions): Promise<CompareResult> {
  const log = o.log ?? (() => undefined);
  const scorer = o.scorer ?? "cdt";
  const topK = o.topK ?? 2;
  const theta1 = await rt.models.load({ source: o.model });
  const sourceAccBefore = await accuracy(rt, theta1.id, o.sourceTest);
  const zeroShot = new Map<string, number>();
  for (const t of o.targets) zeroShot.set(t.name, await accuracy(rt, theta1.id, t.test));
  log(`θ1 source accuracy ${(sourceAccBefore * 100).toFixed(1)}%; ${o.targets.map((t) => `${t.name} ${((zeroShot.get(t.name) as number) * 100).toFixed(1)}%`).join(", ")} before target training; scoring heads with ${scorer}`);
  const scores = join(o.workDir, `scores-${scorer}.json`);
  const grid = (await rt.scoring.score({ model: theta1, data: o.discovery, method: scorer, out: scores }).finalResult()).body.scores;
  await theta1.release();
  const circuit = (await rt.circuits.select({ scores, topK, out: join(o.workDir, "circuit.json") })).heads as [number, number][];
  const low = (await rt.circuits.select({ scores, strategy: "low", topK, out: join(o.workDir, "circuit-low.json") })).heads as [number, number][];
  log(`circuit ${fmtHeads(circuit)}; low ${fmtHeads(low)}`);

  const runs: CompareRun[] = [];
  for (const target of o.targets) {
    for (const seed of o.seeds) {
      for (const method of o.methods) {
        const model = await rt.models.load({ source: o.model });
        const heads = method === "ctsft" ? circuit : method === "ctsft-low" ? low : method === "random" ? await randomHeads(rt, scores, topK, seed) : undefined;
        const common = { model, data: target.train, epochs: o.epochs ?? 3, lr: o.lr?.[method] ?? DEFAULT_LR[method], seed, batchSize: o.batchSize ?? 16 };
        const request: TrainOptions = heads ? { ...common, method: "ctsft", heads } : { ...common, method: method as "full" | "norms" | "lora" };
        const stream = rt.train(request);
        const losses: number[] = [];
        for await (const e of stream) if (e.type === "step") losses.push(e.loss);
        const { body } = await stream.result;
        const targetAcc = await accuracy(rt, model.id, target.test);
        const sourceAccAfter = await accuracy(rt, model.id, o.sourceTest);
        const validAcc = target.valid ? await accuracy(rt, model.id, target.valid) : null;
        const run: CompareRun = {
          method,
          target: target.name,
          seed,
          targetAcc,
          validAcc,
          sourceAccAfter,
          paramsFraction: body.paramsFraction,
          seconds: body.seconds,
          heads: heads ?? null,
          touchedHeads: (body.mask?.touchedHeads as [number, number][] | undefined) ?? null,
          losses,
        };
        runs.push(run);
        o.onRun?.(run);
        log(`${target.name} seed ${seed} ${method}: target ${(targetAcc * 100).toFixed(1)}%, source ${(sourceAccAfter * 100).toFixed(1)}%`);
        await model.release();
      }
    }
  }
  return { methods: summarize(runs, o, sourceAccBefore, zeroShot), runs, sourceAccBefore, scores: grid, circuit, low, scorer };
}

async function accuracy(rt: Runtime, model: string, data: DataRef): Promise<number> {
  return (await rt.evaluate({ model, data: [data] }).finalResult()).body.results[0]?.accuracy as number;
}

async function randomHeads(rt: Runtime, scores: string, k: number, seed: number): Promise<[number, number][]> {
  return (await rt.circuits.select({ scores, strategy: "random", topK: k, seed })).heads as [number, number][];
}

function fmtHeads(heads: [number, number][]): string {
  return heads.map(([l, h]) => `L${l}H${h}`).join(" ");
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) : 0;
  return [m, Math.sqrt(v)];
}

function summarize(runs: CompareRun[], o: CompareOptions, before: number, zeroShot: Map<string, number>): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const target of o.targets) {
    const full = new Map(runs.filter((r) => r.target === target.name && r.method === "full").map((r) => [r.seed, r]));
    for (const method of o.methods) {
      const mine = runs.filter((r) => r.target === target.name && r.method === method);
      const [acc, accStd] = meanStd(mine.map((r) => r.targetAcc));
      const [after] = meanStd(mine.map((r) => r.sourceAccAfter));
      const [forget, forgetStd] = meanStd(mine.map((r) => before - r.sourceAccAfter));
      const paired = method !== "full" && mine.every((r) => full.has(r.seed)) && full.size > 0;
      const dForget = paired ? meanStd(mine.map((r) => before - r.sourceAccAfter - (before - (full.get(r.seed) as CompareRun).sourceAccAfter))) : null;
      const dTarget = paired ? meanStd(mine.map((r) => r.targetAcc - (full.get(r.seed) as CompareRun).targetAcc)) : null;
      rows.push({
        name: method,
        target: target.name,
        seeds: mine.length,
        target_acc_before: zeroShot.get(target.name) as number,
        target_acc: acc,
        target_acc_std: accStd,
        source_acc_before: before,
        source_acc_after: after,
        forgetting: forget,
        forgetting_std: forgetStd,
        forgetting_vs_full: dForget?.[0] ?? null,
        forgetting_vs_full_std: dForget?.[1] ?? null,
        target_vs_full: dTarget?.[0] ?? null,
        target_vs_full_std: dTarget?.[1] ?? null,
        params_fraction: meanStd(mine.map((r) => r.paramsFraction))[0],
        seconds: meanStd(mine.map((r) => r.seconds))[0],
      });
    }
  }
  return rows;
}

/** Strategy `auto` (editing vs preserving the mechanism): per target, the circuit or the
 * low-relevance heads, whichever reached the higher mean validation accuracy, and why. */
export function chooseStrategy(runs: CompareRun[], target: string): { strategy: "circuit" | "low"; reason: string } | null {
  const valid = (m: CompareMethod) => runs.filter((r) => r.target === target && r.method === m && r.validAcc !== null).map((r) => r.validAcc as number);
  const [c, l] = [valid("ctsft"), valid("ctsft-low")];
  if (c.length === 0 || l.length === 0) return null;
  const [mc] = meanStd(c);
  const [ml] = meanStd(l);
  const strategy = mc >= ml ? "circuit" : "low";
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return { strategy, reason: `${target}: ${strategy === "circuit" ? "editing the circuit" : "preserving it (low-relevance heads)"} reached ${pct(Math.max(mc, ml))} validation accuracy vs ${pct(Math.min(mc, ml))} (mean over ${c.length} seeds)` };
}
