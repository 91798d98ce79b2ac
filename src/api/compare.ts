import { join } from "node:path";
import { BadRequestError } from "../errors.ts";
import type { DataRef } from "../schema/data.ts";
import type { Faithfulness, ScoreMethod, Stability } from "../schema/scoring.ts";
import type { ExecutorInput } from "../schema/sweep.ts";
import { spearman, topKOverlap } from "../stats.ts";
import type { HandleLike } from "./handles.ts";
import type { Runtime, TrainOptions } from "./runtime.ts";
import { scoreDiagnostics } from "./scoring.ts";
import { type CellError, checkInsideRoot, parseExecutor, type SweepResult, sweep, type SweepWorker } from "./sweep.ts";

/** Default of {@link CompareOptions.ablationBelow}: the Spearman with exact ablation below which
 * a scorer's circuit is not used (issue 9's bar for a scorer a circuit can be trusted to). On
 * the tiny models of docs/method.md cdt sits at 0.9–1.0 except on some gpt2 seeds (0.03–0.68). */
export const ABLATION_BELOW = 0.7;

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

/** A related task in the proxy language that θ1 is also competent on (e.g. NLI beside
 * sentiment): its accuracy before and after each transfer is a second forgetting measure. */
export interface RelatedTask {
  name: string;
  /** Its test set, evaluated with its own template and label words (not θ1's task). */
  test: DataRef;
  template?: string;
  verbalizer?: Record<string, string>;
}

/** What {@link compareMethods} needs: θ1 (competent on the proxy), data, and the plan. */
export interface CompareOptions {
  /** The θ1 checkpoint directory. */
  model: string;
  /** Label-balanced discovery set for scoring (proxy language). */
  discovery: DataRef;
  /** Proxy-language test set: forgetting is measured here, as accuracy and (unless `lmLoss`
   * is false) as the language-model loss of its texts. */
  sourceTest: DataRef;
  /** Measure the proxy-language LM loss (mean next-token NLL, nats) of `sourceTest`'s texts
   * before and after every run (default true; one more pass over it per run). */
  lmLoss?: boolean;
  /** Related tasks θ1 is also competent on: each one's accuracy before/after every run. */
  related?: RelatedTask[];
  targets: CompareTarget[];
  methods: CompareMethod[];
  seeds: number[];
  /** Data-efficiency curve: train every method on the first N examples of each target's
   * training set, for each N here (e.g. `[25, 50, 100, 200, 400]`); the rows then hold one
   * entry per size, with paired differences against `full` at the same size and seed.
   * Omitted: the whole training set, once. */
  targetSizes?: number[];
  /** Directory for scores and circuit files. */
  workDir: string;
  scorer?: ScoreMethod;
  /** When the scorer's faithfulness check on θ1 (its Spearman with exact mean-ablation) is
   * below this, the circuits are chosen from exact mean-ablation scores of the whole
   * discovery set instead, and θ2s are re-scored the same way; a warning says so. Default
   * {@link ABLATION_BELOW} (0.7); `null`: keep the scorer's circuit whatever the check says. */
  ablationBelow?: number | null;
  /** Circuit size (heads) for ctsft, ctsft-low and random. */
  topK?: number;
  epochs?: number;
  /** Learning rate per method (defaults: full 5e-4, head methods 2e-3, norms 1e-2, lora 2e-3). */
  lr?: Partial<Record<CompareMethod, number>>;
  batchSize?: number;
  /** Re-score every θ2 on the discovery set to measure how much of θ1's mechanism survived
   * (default true; costs one scoring pass per run). */
  preservation?: boolean;
  /** Where the grid's runs execute (default `{ kind: "serial" }`: one after another on `rt`);
   * `{ kind: "ray", address, resources }` spreads them over a Ray cluster (see {@link sweep}).
   * Scoring θ1 and selecting the circuits always happen on `rt`, first. */
  executor?: ExecutorInput;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Called after every finished run (a method on a target with a seed), as runs finish. */
  onRun?: (run: CompareRun) => void;
  /** Called after every run that failed, as runs finish; the others go on. */
  onFailed?: (failure: CompareFailure) => void;
}

/** A run (a method on a target with a seed) that failed; the grid's other runs are kept. */
export interface CompareFailure {
  method: CompareMethod;
  target: string;
  seed: number;
  /** Target training examples (a {@link CompareOptions.targetSizes} entry; null: the whole set). */
  size: number | null;
  error: CellError;
  /** The worker it ran on ({@link SweepWorker.id}). */
  worker: string;
}

/** One training run's measurements. */
export interface CompareRun {
  method: CompareMethod;
  target: string;
  seed: number;
  /** Target training examples (a {@link CompareOptions.targetSizes} entry; null: the whole set). */
  size: number | null;
  targetAcc: number;
  /** Accuracy on the target's validation set, when it has one. */
  validAcc: number | null;
  sourceAccAfter: number;
  /** Proxy LM loss of `sourceTest`'s texts after the run (nats/token; null: not measured). */
  sourceLmLossAfter: number | null;
  /** Accuracy on each related task after the run, by name. */
  relatedAccAfter: Record<string, number>;
  paramsFraction: number;
  seconds: number;
  heads: [number, number][] | null;
  touchedHeads: [number, number][] | null;
  /** Training loss at every optimizer step. */
  losses: number[];
  /** The worker it ran on ({@link SweepWorker.id}: `process:PID` or `ray:NODE:PID`). */
  worker: string;
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
  /** Target training examples of this row's runs (null: the whole training set). */
  target_size: number | null;
  seeds: number;
  /** θ1's accuracy on the target before any target training (zero-shot transfer). */
  target_acc_before: number;
  target_acc: number;
  target_acc_std: number;
  source_acc_before: number;
  source_acc_after: number;
  forgetting: number;
  forgetting_std: number;
  /** θ1's proxy LM loss (nats/token) and, mean ± std over seeds, θ2's; null when not measured. */
  lm_loss_before: number | null;
  lm_loss_after: number | null;
  lm_loss_after_std: number | null;
  /** Mean over seeds of (θ2's LM loss − full's θ2 on the same seed); null for full itself or unmeasured. */
  lm_loss_vs_full: number | null;
  lm_loss_vs_full_std: number | null;
  /** Per related task: accuracy before/after, its forgetting (before − after) and that paired against full. */
  related: RelatedRow[];
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

/** One related task's figures in a {@link CompareRow}. */
export interface RelatedRow {
  name: string;
  acc_before: number;
  acc_after: number;
  acc_after_std: number;
  forgetting: number;
  forgetting_std: number;
  forgetting_vs_full: number | null;
  forgetting_vs_full_std: number | null;
}

/** What {@link compareMethods} measured. */
export interface CompareResult {
  methods: CompareRow[];
  runs: CompareRun[];
  sourceAccBefore: number;
  /** θ1's proxy LM loss on `sourceTest`'s texts (null: `lmLoss` off). */
  sourceLmLossBefore: number | null;
  /** θ1's accuracy on each related task, by name. */
  relatedAccBefore: Record<string, number>;
  /** Relevance per head, `[layers][heads]` (null = not scored). */
  scores: (number | null)[][];
  circuit: [number, number][];
  low: [number, number][];
  /** The scorer whose scores chose the circuits: the one asked for, or `ablation` after a fallback. */
  scorer: ScoreMethod;
  /** The scorer asked for, when its faithfulness was below `ablationBelow` and `ablation` chose the circuits instead; else null. */
  fallbackFrom: ScoreMethod | null;
  /** θ1's scoring (by the scorer asked for) checked against exact ablation (null: not reported, or the scorer is ablation). */
  faithfulness: Faithfulness | null;
  /** cdt's numerical stability on θ1 (null for other scorers or when not reported). */
  stability: Stability | null;
  /** Reasons to distrust the results (low faithfulness, unstable cdt, failed runs): {@link scoreDiagnostics}' warnings and one per failed run, logged as "warning: …". */
  warnings: string[];
  /** Runs that failed, in grid order; `runs` and the rows hold the others. */
  failed: CompareFailure[];
  /** Where the runs executed, and how long the grid took there ({@link SweepResult}'s seconds and startSeconds). */
  executor: { kind: "serial" | "ray"; workers: SweepWorker[]; seconds: number; startSeconds: number };
}

const WARNING = "warning: ";

const DEFAULT_LR: Record<CompareMethod, number> = { full: 5e-4, ctsft: 2e-3, "ctsft-low": 2e-3, random: 2e-3, norms: 1e-2, lora: 2e-3 };

/**
 * The paper's comparison on one θ1: score heads, select the circuit, the low-relevance and
 * random circuits of the same size, then for each target, seed and method train θ1 → θ2 on
 * the target set and measure target accuracy and source forgetting and, unless
 * `preservation` is off, re-score θ2 to see how much of θ1's head relevance survived. Every
 * run starts from a fresh load of θ1; the same data and budget go to every method. The runs
 * execute on `executor` (in turn on `rt` by default, or on a Ray cluster's workers) with the
 * same code either way; a run that fails is reported in `failed` and as a warning, and the
 * others are kept.
 */
export async function compareMethods(rt: Runtime, o: CompareOptions): Promise<CompareResult> {
  await checkPlan(rt, o);
  const log = o.log ?? (() => undefined);
  const asked = o.scorer ?? "cdt";
  const topK = o.topK ?? 2;
  const executor = parseExecutor(o.executor);
  const dataPaths = [o.discovery, o.sourceTest, ...o.targets.flatMap((t) => [t.train, t.test, t.valid]), ...(o.related ?? []).map((t) => t.test)].map((d) => (d && "path" in d ? d.path : d && "nusax" in d ? d.nusax.dir : undefined));
  checkInsideRoot(executor, [o.model, o.workDir, ...dataPaths]);
  const theta1 = await rt.models.load({ source: o.model });
  const source = await forgettingOf(rt, theta1.id, o);
  const sourceAccBefore = source.acc;
  const zeroShot = new Map<string, number>();
  for (const t of o.targets) zeroShot.set(t.name, await accuracy(rt, theta1.id, t.test));
  const lm = source.lmLoss === null ? "" : `, LM loss ${source.lmLoss.toFixed(3)}`;
  const rel = Object.entries(source.related).map(([name, acc]) => `; ${name} ${(acc * 100).toFixed(1)}%`).join("");
  log(`θ1 source accuracy ${(sourceAccBefore * 100).toFixed(1)}%${lm}${rel}; ${o.targets.map((t) => `${t.name} ${((zeroShot.get(t.name) as number) * 100).toFixed(1)}%`).join(", ")} before target training; scoring heads with ${asked}`);
  let scores = join(o.workDir, `scores-${asked}.json`);
  const scored = (await rt.scoring.score({ model: theta1, data: o.discovery, method: asked, out: scores }).finalResult()).body;
  let grid = scored.scores;
  const faithfulness = scored.faithfulness ?? null;
  const stability = scored.stability ?? null;
  const diagnostics = scoreDiagnostics(scored);
  for (const line of diagnostics) log(line);
  const warnings = diagnostics.flatMap((line) => (line.startsWith(WARNING) ? [line.slice(WARNING.length)] : []));
  // A scorer that disagrees with the exact effect on this very model does not choose the circuit.
  const below = o.ablationBelow === undefined ? ABLATION_BELOW : o.ablationBelow;
  const rho = faithfulness?.spearman;
  const fallbackFrom = below !== null && asked !== "ablation" && typeof rho === "number" && rho < below ? asked : null;
  if (fallbackFrom) {
    const why = `${asked}'s faithfulness on θ1 (Spearman ${rho?.toFixed(2)}) is below ${below}: the circuits are chosen from exact mean-ablation scores instead (ablationBelow)`;
    log(WARNING + why);
    warnings.push(why);
    scores = join(o.workDir, "scores-ablation.json");
    grid = (await rt.scoring.score({ model: theta1, data: o.discovery, method: "ablation", out: scores }).finalResult()).body.scores;
  }
  const scorer: ScoreMethod = fallbackFrom ? "ablation" : asked;
  await theta1.release();
  const circuit = (await rt.circuits.select({ scores, topK, out: join(o.workDir, "circuit.json") })).heads as [number, number][];
  const low = (await rt.circuits.select({ scores, strategy: "low", topK, out: join(o.workDir, "circuit-low.json") })).heads as [number, number][];
  log(`circuit ${fmtHeads(circuit)}; low ${fmtHeads(low)}`);
  const overlap = o.methods.includes("ctsft-low") ? circuitOverlapWarning(circuit, low, grid) : null;
  if (overlap) {
    log(WARNING + overlap);
    warnings.push(overlap);
  }

  const sizes = o.targetSizes ?? [null];
  const cells = o.targets.flatMap((target) => sizes.flatMap((size) => o.seeds.flatMap((seed) => o.methods.map((method): Cell => ({ target, size, seed, method })))));
  const plan: Plan = { o, scores, grid, circuit, low, topK, scorer };
  const label = (c: Cell) => `${c.target.name}${c.size === null ? "" : ` (${c.size} examples)`} seed ${c.seed} ${c.method}`;
  const done = await sweep(cells, (worker, cell) => runCell(worker, cell, plan), {
    executor,
    runtime: rt,
    log,
    onCell: (outcome) => {
      if (outcome.ok) {
        const run: CompareRun = { ...outcome.value, worker: outcome.worker };
        o.onRun?.(run);
        const p = run.preservation;
        const kept = p ? `; relevance vs θ1: Spearman ${p.spearman?.toFixed(2) ?? "—"}, top-${topK} overlap ${p.topKOverlap === null ? "—" : `${(p.topKOverlap * 100).toFixed(0)}%`}` : "";
        log(`${label(outcome.cell)}: target ${(run.targetAcc * 100).toFixed(1)}%, source ${(run.sourceAccAfter * 100).toFixed(1)}%${kept}`);
      } else {
        o.onFailed?.(failureOf(outcome.cell, outcome.error, outcome.worker));
        log(`${WARNING}${label(outcome.cell)} failed: ${outcome.error.message}`);
      }
    },
  });
  const runs = done.outcomes.flatMap((r): CompareRun[] => (r.ok ? [{ ...r.value, worker: r.worker }] : []));
  const failed = done.outcomes.flatMap((r) => (r.ok ? [] : [failureOf(r.cell, r.error, r.worker)]));
  warnings.push(...failed.map((f) => `${f.target}${f.size === null ? "" : ` (${f.size} examples)`} seed ${f.seed} ${f.method} failed (${f.error.name}): ${f.error.message}`));
  return {
    methods: summarize(runs, o, source, zeroShot),
    runs,
    sourceAccBefore,
    sourceLmLossBefore: source.lmLoss,
    relatedAccBefore: source.related,
    scores: grid,
    circuit,
    low,
    scorer,
    fallbackFrom,
    faithfulness,
    stability,
    warnings,
    failed,
    executor: { kind: done.executor, workers: done.workers, seconds: done.seconds, startSeconds: done.startSeconds },
  };
}

/** One cell of the grid: a method on a target with a seed. */
interface Cell {
  target: CompareTarget;
  /** Train on the first `size` target examples (null: all). */
  size: number | null;
  seed: number;
  method: CompareMethod;
}

/**
 * Refuse, before any work, a plan whose runs would collide or train on other rows than it
 * reports: a seed, method, target or related task given twice (runs and paired differences
 * are keyed by them: a repeated seed would pair a run with its own twin and report no noise),
 * a `targetSizes` entry given twice or larger than a target's training set (read with its own
 * `limit`), or sizes on a training set they cannot cut (a size keeps the first N rows, which a
 * handle or a `perClass` draw does not have). Refusals are `BadRequestError`s naming the field.
 */
export async function checkPlan(rt: Runtime, o: Pick<CompareOptions, "seeds" | "methods" | "targets" | "related" | "targetSizes">): Promise<void> {
  const lists: [string, readonly (string | number)[]][] = [
    ["seeds", o.seeds],
    ["methods", o.methods],
    ["targets", o.targets.map((t) => t.name)],
    ["related", (o.related ?? []).map((t) => t.name)],
    ["targetSizes", o.targetSizes ?? []],
  ];
  for (const [path, xs] of lists) {
    const twice = xs.find((x, i) => xs.indexOf(x) !== i);
    if (twice !== undefined) throw new BadRequestError(`${path} names ${JSON.stringify(twice)} twice: give each once (runs are keyed by it)`, { path });
  }
  const largest = o.targetSizes?.length ? Math.max(...o.targetSizes) : undefined;
  if (largest === undefined) return;
  for (const [i, t] of o.targets.entries()) {
    if ("handle" in t.train || t.train.perClass !== undefined) {
      const what = "handle" in t.train ? "a dataset handle" : "a perClass draw";
      throw new BadRequestError(`targetSizes trains on the first N rows of each training set, but targets.${i}.train is ${what}: give it as a file or NusaX split`, { path: `targets.${i}.train` });
    }
    const ds = await rt.data.load(t.train);
    const n = ds.info.n;
    await ds.release();
    if (n < largest) throw new BadRequestError(`targetSizes asks for ${largest} examples, but targets.${i}.train has ${n}: give sizes up to ${n}, or more training data`, { path: "targetSizes" });
  }
}

/** What every cell shares: the options, θ1's scores and the circuits chosen from them. */
interface Plan {
  o: CompareOptions;
  scores: string;
  grid: (number | null)[][];
  circuit: [number, number][];
  low: [number, number][];
  topK: number;
  scorer: ScoreMethod;
}

/** Train θ1 → θ2 with one method on one target and seed, on whichever runtime the executor
 * gives, and measure it. Every cell starts from a fresh load of θ1, released however it ends. */
async function runCell(rt: Runtime, { target, size, seed, method }: Cell, p: Plan): Promise<Omit<CompareRun, "worker">> {
  const { o } = p;
  const model = await rt.models.load({ source: o.model });
  try {
    const heads = method === "ctsft" ? p.circuit : method === "ctsft-low" ? p.low : method === "random" ? await randomHeads(rt, p.scores, p.topK, seed) : undefined;
    // The first `size` rows (after the set's own skip): the sizes of a curve are nested subsets.
    const data = size === null ? target.train : { ...target.train, limit: size };
    const common = { model, data, epochs: o.epochs ?? 3, lr: o.lr?.[method] ?? DEFAULT_LR[method], seed, batchSize: o.batchSize ?? 16 };
    const request: TrainOptions = heads ? { ...common, method: "ctsft", heads } : { ...common, method: method as "full" | "norms" | "lora" };
    const stream = rt.train(request);
    const losses: number[] = [];
    for await (const e of stream) if (e.type === "step") losses.push(e.loss);
    const { body } = await stream.result;
    const targetAcc = await accuracy(rt, model.id, target.test);
    const after = await forgettingOf(rt, model.id, o);
    const validAcc = target.valid ? await accuracy(rt, model.id, target.valid) : null;
    const preservation = o.preservation === false ? null : await preserved(rt, model, o.discovery, p.scorer, p.grid, p.topK);
    return {
      method,
      target: target.name,
      size,
      seed,
      targetAcc,
      validAcc,
      sourceAccAfter: after.acc,
      sourceLmLossAfter: after.lmLoss,
      relatedAccAfter: after.related,
      paramsFraction: body.paramsFraction,
      seconds: body.seconds,
      heads: heads ?? null,
      touchedHeads: (body.mask?.touchedHeads as [number, number][] | undefined) ?? null,
      losses,
      preservation,
    };
  } finally {
    // A failed cell must not leave θ1 loaded in a worker that goes on to the next cell.
    await model.release().catch(() => undefined);
  }
}

function failureOf(c: Cell, error: CellError, worker: string): CompareFailure {
  return { method: c.method, target: c.target.name, size: c.size, seed: c.seed, error, worker };
}

/** θ2 scored exactly like θ1 (same scorer and discovery set, its own mean baseline), compared with θ1's scores. */
async function preserved(rt: Runtime, model: HandleLike, discovery: DataRef, scorer: ScoreMethod, theta1: (number | null)[][], k: number): Promise<Preservation> {
  const started = performance.now();
  const { body } = await rt.scoring.score({ model, data: discovery, method: scorer, faithfulness: false }).finalResult();
  const [a, b] = [theta1.flat(), body.scores.flat()];
  return { spearman: spearman(a, b), topKOverlap: topKOverlap(a, b, k), seconds: (performance.now() - started) / 1000 };
}

async function accuracy(rt: Runtime, model: HandleLike, data: DataRef, prompt: { template?: string; verbalizer?: Record<string, string> } = {}): Promise<number> {
  return (await rt.evaluate({ model, data: [data], ...prompt }).finalResult()).body.results[0]?.accuracy as number;
}

/** What forgetting is measured by, on one model: proxy accuracy and LM loss (one evaluate
 * call) and each related task's accuracy with its own prompt. */
async function forgettingOf(rt: Runtime, model: HandleLike, o: CompareOptions): Promise<{ acc: number; lmLoss: number | null; related: Record<string, number> }> {
  const lm = o.lmLoss !== false;
  const report = (await rt.evaluate({ model, data: [o.sourceTest], lmLoss: lm }).finalResult()).body.results[0];
  const related: Record<string, number> = {};
  for (const t of o.related ?? []) related[t.name] = await accuracy(rt, model, t.test, { template: t.template, verbalizer: t.verbalizer });
  return { acc: report?.accuracy as number, lmLoss: lm ? (report?.lmLoss ?? null) : null, related };
}

async function randomHeads(rt: Runtime, scores: string, k: number, seed: number): Promise<[number, number][]> {
  return (await rt.circuits.select({ scores, strategy: "random", topK: k, seed })).heads as [number, number][];
}

/**
 * Why `ctsft-low` would not be the control it is meant to be: the circuit (highest signed
 * relevance) and the low-relevance heads (smallest |relevance|) share heads when no head, or
 * too few, score above zero, as on a model that has not learnt the task. `null` when disjoint.
 */
export function circuitOverlapWarning(circuit: [number, number][], low: [number, number][], scores: (number | null)[][]): string | null {
  const shared = circuit.filter(([l, h]) => low.some(([a, b]) => a === l && b === h));
  if (shared.length === 0) return null;
  const scored = scores.flat().filter((s): s is number => s !== null);
  const positive = scored.filter((s) => s > 0).length;
  return `the circuit and the low-relevance heads share ${shared.length} of ${circuit.length} heads (${fmtHeads(shared)}): ${positive} of ${scored.length} heads score above zero, so the highest-relevance heads are among those nearest zero and ctsft-low is no control for ctsft`;
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

/** θ1's forgetting measures, the baseline of every row. */
interface Before {
  acc: number;
  lmLoss: number | null;
  related: Record<string, number>;
}

function summarize(runs: CompareRun[], o: CompareOptions, before: Before, zeroShot: Map<string, number>): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const target of o.targets) {
    for (const size of o.targetSizes ?? [null]) {
      rows.push(...summarizeTarget(runs.filter((r) => r.target === target.name && r.size === size), o.methods, target.name, size, before, zeroShot));
    }
  }
  return rows;
}

/** The rows of one target at one training-set size: one per method that has runs. */
function summarizeTarget(runs: CompareRun[], methods: CompareMethod[], target: string, size: number | null, b: Before, zeroShot: Map<string, number>): CompareRow[] {
  const before = b.acc;
  const full = new Map(runs.filter((r) => r.method === "full").map((r) => [r.seed, r]));
  return methods.flatMap((method): CompareRow[] => {
    const mine = runs.filter((r) => r.method === method);
    if (mine.length === 0) return []; // every seed failed: the failures say why
    const [acc, accStd] = meanStd(mine.map((r) => r.targetAcc));
    const [after] = meanStd(mine.map((r) => r.sourceAccAfter));
    const [forget, forgetStd] = meanStd(mine.map((r) => before - r.sourceAccAfter));
    const paired = method !== "full" && mine.every((r) => full.has(r.seed)) && full.size > 0;
    /** Mean ± std over seeds of f(run) − f(full's run on the same seed); null when unpaired. */
    const vsFull = (f: (r: CompareRun) => number): [number, number] | null => (paired ? meanStd(mine.map((r) => f(r) - f(full.get(r.seed) as CompareRun))) : null);
    const dForget = vsFull((r) => before - r.sourceAccAfter);
    const dTarget = vsFull((r) => r.targetAcc);
    const lmAfter = mine.every((r) => r.sourceLmLossAfter !== null) ? meanStd(mine.map((r) => r.sourceLmLossAfter as number)) : null;
    const dLm = lmAfter && vsFull((r) => r.sourceLmLossAfter as number);
    const related = Object.entries(b.related).map(([name, accBefore]): RelatedRow => {
      const [accAfter, accAfterStd] = meanStd(mine.map((r) => r.relatedAccAfter[name] as number));
      const [forgetting, forgettingStd] = meanStd(mine.map((r) => accBefore - (r.relatedAccAfter[name] as number)));
      const d = vsFull((r) => accBefore - (r.relatedAccAfter[name] as number));
      return { name, acc_before: accBefore, acc_after: accAfter, acc_after_std: accAfterStd, forgetting, forgetting_std: forgettingStd, forgetting_vs_full: d?.[0] ?? null, forgetting_vs_full_std: d?.[1] ?? null };
    });
    return [
      {
        name: method,
        target,
        target_size: size,
        seeds: mine.length,
        target_acc_before: zeroShot.get(target) as number,
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
        lm_loss_before: b.lmLoss,
        lm_loss_after: lmAfter?.[0] ?? null,
        lm_loss_after_std: lmAfter?.[1] ?? null,
        lm_loss_vs_full: dLm?.[0] ?? null,
        lm_loss_vs_full_std: dLm?.[1] ?? null,
        related,
        params_fraction: meanStd(mine.map((r) => r.paramsFraction))[0],
        seconds: meanStd(mine.map((r) => r.seconds))[0],
        ...kept(mine),
      },
    ];
  });
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
