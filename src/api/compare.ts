import { join } from "node:path";
import type { DataRef } from "../schema/data.ts";
import type { Faithfulness, ScoreMethod, Stability } from "../schema/scoring.ts";
import { spearman, topKOverlap } from "../stats.ts";
import type { HandleLike } from "./handles.ts";
import type { Runtime, TrainOptions } from "./runtime.ts";
import { scoreDiagnostics } from "./scoring.ts";

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
  /** Re-score every θ2 on the discovery set to measure how much of θ1's mechanism survived
   * (default true; costs one scoring pass per run). */
  preservation?: boolean;
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
  /** θ2 re-scored like θ1 and compared with it; null when `preservation` is off. */
  preservation: Preservation | null;
}

/** How much of θ1's head relevance survives in θ2: both scored with the same scorer,
 * discovery set and mean-baseline settings (each model's own mean). */
export interface Preservation {
  /** Spearman correlation of the relevance of all scored heads, θ1 vs θ2 (null when undefined, e.g. constant scores). */
  spearman: number | null;
  /** |top-k(θ1) ∩ top-k(θ2)| / k with k = the circuit size. */
  topKOverlap: number | null;
  /** Wall seconds the re-scoring took (mean baseline and scoring, as the client saw it). */
  seconds: number;
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
  /** Mean ± std over seeds of {@link Preservation.spearman} (null when no run has it). */
  preservation_spearman: number | null;
  preservation_spearman_std: number | null;
  /** Mean ± std over seeds of {@link Preservation.topKOverlap} (null when no run has it). */
  preservation_topk: number | null;
  preservation_topk_std: number | null;
}

/** What {@link compareMethods} measured. */
export interface CompareResult {
  methods: CompareRow[];
  runs: CompareRun[];
  sourceAccBefore: number;
  /** Relevance per head, `[layers][heads]` (null = not scored). */
  scores: (number | null)[][];
  circuit: [number, number][];
  low: [number, number][];
  scorer: ScoreMethod;
  /** θ1's scoring checked against exact ablation (null: not reported, or the scorer is ablation). */
  faithfulness: Faithfulness | null;
  /** cdt's numerical stability on θ1 (null for other scorers or when not reported). */
  stability: Stability | null;
  /** Reasons to distrust the circuit (low faithfulness, unstable cdt): {@link scoreDiagnostics}' warnings, logged as "warning: …". */
  warnings: string[];
}

const WARNING = "warning: ";

const DEFAULT_LR: Record<CompareMethod, number> = { full: 5e-4, ctsft: 2e-3, "ctsft-low": 2e-3, random: 2e-3, norms: 1e-2, lora: 2e-3 };

/**
 * The paper's comparison on one θ1: score heads, select the circuit, the low-relevance and
 * random circuits of the same size, then for each target, seed and method train θ1 → θ2 on
 * the target set and measure target accuracy and source forgetting and, unless
 * `preservation` is off, re-score θ2 to see how much of θ1's head relevance survived. Every
 * run starts from a fresh load of θ1; the same data and budget go to every method.
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
  const scored = (await rt.scoring.score({ model: theta1, data: o.discovery, method: scorer, out: scores }).finalResult()).body;
  await theta1.release();
  const grid = scored.scores;
  const faithfulness = scored.faithfulness ?? null;
  const stability = scored.stability ?? null;
  const diagnostics = scoreDiagnostics(scored);
  for (const line of diagnostics) log(line);
  const warnings = diagnostics.flatMap((line) => (line.startsWith(WARNING) ? [line.slice(WARNING.length)] : []));
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
        const preservation = o.preservation === false ? null : await preserved(rt, model, o.discovery, scorer, grid, topK);
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
          preservation,
        };
        runs.push(run);
        o.onRun?.(run);
        const kept = preservation ? `; relevance vs θ1: Spearman ${preservation.spearman?.toFixed(2) ?? "—"}, top-${topK} overlap ${preservation.topKOverlap === null ? "—" : `${(preservation.topKOverlap * 100).toFixed(0)}%`}` : "";
        log(`${target.name} seed ${seed} ${method}: target ${(targetAcc * 100).toFixed(1)}%, source ${(sourceAccAfter * 100).toFixed(1)}%${kept}`);
        await model.release();
      }
    }
  }
  return { methods: summarize(runs, o, sourceAccBefore, zeroShot), runs, sourceAccBefore, scores: grid, circuit, low, scorer, faithfulness, stability, warnings };
}

/** θ2 scored exactly like θ1 (same scorer and discovery set, its own mean baseline), compared with θ1's scores. */
async function preserved(rt: Runtime, model: HandleLike, discovery: DataRef, scorer: ScoreMethod, theta1: (number | null)[][], k: number): Promise<Preservation> {
  const started = performance.now();
  const { body } = await rt.scoring.score({ model, data: discovery, method: scorer, faithfulness: false }).finalResult();
  const [a, b] = [theta1.flat(), body.scores.flat()];
  return { spearman: spearman(a, b), topKOverlap: topKOverlap(a, b, k), seconds: (performance.now() - started) / 1000 };
}

async function accuracy(rt: Runtime, model: HandleLike, data: DataRef): Promise<number> {
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
        ...kept(mine),
      });
    }
  }
  return rows;
}

/** Mean ± std over seeds of the preservation figures, skipping runs without them. */
function kept(runs: CompareRun[]): Pick<CompareRow, "preservation_spearman" | "preservation_spearman_std" | "preservation_topk" | "preservation_topk_std"> {
  const stat = (f: (p: Preservation) => number | null): [number, number] | [null, null] => {
    const xs = runs.flatMap((r) => {
      const v = r.preservation && f(r.preservation);
      return v === null ? [] : [v];
    });
    return xs.length ? meanStd(xs) : [null, null];
  };
  const [rho, rhoStd] = stat((p) => p.spearman);
  const [top, topStd] = stat((p) => p.topKOverlap);
  return { preservation_spearman: rho, preservation_spearman_std: rhoStd, preservation_topk: top, preservation_topk_std: topStd };
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
