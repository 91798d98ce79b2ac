import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { BadRequestError } from "../errors.ts";
import { MARKER_FILE, readMarker, writeFileAtomic } from "../internal/atomic.ts";
import { isInside } from "../internal/paths.ts";
import { AdaptConfig, type AdaptConfigInput } from "../schema/adapt.ts";
import type { DataRef } from "../schema/data.ts";
import type { Faithfulness, ScoreMethod, Stability } from "../schema/scoring.ts";
import { checkPlan, chooseStrategy, type CompareFailure, type CompareMethod, type CompareResult, type CompareRow, compareMethods } from "./compare.ts";
import { checkInsideRoot, parseExecutor } from "./sweep.ts";
import type { Curve } from "../report/model.ts";
import type { Runtime } from "./runtime.ts";
import { scoreDiagnostics } from "./scoring.ts";

/** What {@link runAdapt} returns (and `ctsft adapt --json` prints). */
export interface AdaptResult {
  methods: CompareRow[];
  /** With `targetSizes`: each method's rows on each target by training-set size (its data-efficiency curve); else empty. */
  curves: Curve[];
  /** Per target (and per size of a data-efficiency curve): is CT-SFT's lower forgetting beyond seed noise? */
  verdicts: { target: string; size: number | null; text: string; beyondNoise: boolean }[];
  strategy: { target: string; strategy: "circuit" | "low"; reason: string }[];
  circuit: [number, number][];
  low: [number, number][];
  sourceAccBefore: number;
  /** θ1's proxy LM loss, nats/token (null: `lmLoss: false`). */
  sourceLmLossBefore: number | null;
  /** θ1's accuracy on each related task, by name. */
  relatedAccBefore: Record<string, number>;
  /** The head scorer that chose the circuit: the config's, or `ablation` after a fallback (`ablationBelow`). */
  scorer: ScoreMethod;
  /** The config's scorer when its faithfulness was too low and `ablation` chose the circuit instead; else null. */
  fallbackFrom: ScoreMethod | null;
  /** θ1's scorer checked against exact mean-ablation (null when not reported or the scorer is ablation). */
  faithfulness: Faithfulness | null;
  /** cdt's numerical stability on θ1 (null for other scorers). */
  stability: Stability | null;
  /** Reasons to distrust the circuit, and the runs that failed (also logged as "warning: …" lines). */
  warnings: string[];
  /** Runs that failed (the rows hold the others); each is also a warning. */
  failed: CompareFailure[];
  /** Where the grid's runs executed (`config.executor`). */
  executor: CompareResult["executor"];
  out: string;
  report: { markdown: string; html: string; png: string; charts: string };
  seconds: number;
}

/** Read a YAML or JSON config file; relative paths in it are relative to the file. Every
 * bad field is reported by its path (e.g. `targets.0.train.path`). */
export function loadAdaptConfig(file: string): AdaptConfig {
  let raw: unknown;
  try {
    const text = readFileSync(file, "utf8");
    raw = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new BadRequestError(`cannot read config ${file}: ${(e as Error).message}`, { path: "config" });
  }
  return parseAdaptConfig(raw, dirname(resolve(file)));
}

/** Validate a config object; paths are resolved against `baseDir`. */
export function parseAdaptConfig(raw: unknown, baseDir: string): AdaptConfig {
  const r = AdaptConfig.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new BadRequestError(`invalid config: ${issues.join("; ")}`, { path: r.error.issues[0]?.path.join(".") });
  }
  const c = r.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const ref = <T extends DataRef>(d: T): T => ("path" in d ? { ...d, path: abs(d.path) } : "nusax" in d && d.nusax.dir ? { ...d, nusax: { ...d.nusax, dir: abs(d.nusax.dir) } } : d) as T;
  const looksLikePath = (m: string) => m.startsWith(".") || m.startsWith("/") || m.endsWith(".gguf");
  return {
    ...c,
    model: typeof c.model === "string" && looksLikePath(c.model) ? abs(c.model) : c.model,
    proxy: { ...c.proxy, train: ref(c.proxy.train), valid: ref(c.proxy.valid), test: ref(c.proxy.test) },
    targets: c.targets.map((t) => ({ ...t, train: ref(t.train), test: ref(t.test), valid: t.valid && ref(t.valid) })),
    related: c.related.map((t) => ({ ...t, train: ref(t.train), test: ref(t.test), valid: t.valid && ref(t.valid) })),
    out: abs(c.out),
    executor: c.executor.kind === "ray" && c.executor.root ? { ...c.executor, root: abs(c.executor.root) } : c.executor,
  };
}

/** θ1's faithfulness and stability lines as setup entries ("faithfulness (θ1)": "Spearman 0.31 with …"); warnings are shown apart. */
function scoringChecks(r: CompareResult): Record<string, string> {
  const lines = scoreDiagnostics({ method: r.fallbackFrom ?? r.scorer, faithfulness: r.faithfulness, stability: r.stability }).filter((l) => !l.startsWith("warning: "));
  return Object.fromEntries(lines.map((l) => [`${l.slice(0, l.indexOf(": "))} (θ1)`, l.slice(l.indexOf(": ") + 2)]));
}

/** The file behind a dataset reference (to train a tokenizer on), if it is one. */
function fileOf(d: DataRef): string | undefined {
  if ("path" in d) return d.path;
  if ("nusax" in d) {
    const dir = d.nusax.dir ?? process.env.CTSFT_NUSAX_DIR;
    return dir ? join(dir, d.nusax.lang, `${d.nusax.split ?? "train"}.csv`) : undefined;
  }
  return undefined;
}

/** The field → column map the tokenizer corpus is read with: a pair-input task's training
 * files must name their fields alike (one map reads every file), or none of them does. */
function corpusFields(sources: DataRef[]): Record<string, string> | undefined {
  const maps = sources.map((d) => ("fields" in d ? d.fields : undefined));
  const first = maps[0];
  const same = (m: Record<string, string> | undefined) => JSON.stringify(m ?? null) === JSON.stringify(first ?? null);
  const other = maps.findIndex((m) => !same(m));
  if (other >= 0) {
    const where = other === 0 ? "proxy.train" : `targets.${other - 1}.train`;
    throw new BadRequestError(`${where}.fields differs from proxy.train.fields: building the model reads every training file with one field map, so give them the same fields (or build θ0 with ctsft new-model)`, { path: `${where}.fields` });
  }
  return first;
}

/** Every dataset of a config with the config field naming it. */
function datasetsOf(c: AdaptConfig): [string, DataRef][] {
  const refs: [string, DataRef | undefined][] = [
    ["proxy.train", c.proxy.train],
    ["proxy.valid", c.proxy.valid],
    ["proxy.test", c.proxy.test],
    ...c.targets.flatMap((t, i): [string, DataRef | undefined][] => [
      [`targets.${i}.train`, t.train],
      [`targets.${i}.test`, t.test],
      [`targets.${i}.valid`, t.valid],
    ]),
    ...c.related.flatMap((t, i): [string, DataRef | undefined][] => [
      [`related.${i}.train`, t.train],
      [`related.${i}.test`, t.test],
      [`related.${i}.valid`, t.valid],
    ]),
  ];
  return refs.filter((r): r is [string, DataRef] => r[1] !== undefined);
}

/** The config field a runtime refusal of dataset `field` points at (`proxy.valid.nusax.lang`). */
function dataField(field: string, ref: DataRef, runtimePath: string | undefined): string {
  const last = runtimePath?.split(".").at(-1);
  if ("path" in ref) return last === "labels" ? `${field}.labels` : `${field}.path`;
  if ("nusax" in ref) {
    if (last === "lang" || last === "split") return `${field}.nusax.${last}`;
    if (last === "root" || last === "dir") return `${field}.nusax.dir`;
    if (last === "labels") return `${field}.labels`;
  }
  return field;
}

/**
 * Check everything a config names before any work starts: the base model's path (local
 * modes), every dataset (loaded once by the runtime and released: a missing file, an unknown
 * NusaX language or split, a bad column all fail here) and the output folder. Each refusal is a
 * `BadRequestError` naming the config field.
 */
async function preflight(rt: Runtime, c: AdaptConfig): Promise<void> {
  if (typeof c.model === "string" && rt.mode !== "remote" && isAbsolute(c.model) && !existsSync(c.model)) {
    throw new BadRequestError(`model ${c.model} does not exist`, { path: "model" });
  }
  for (const [field, ref] of datasetsOf(c)) {
    if ("handle" in ref) continue;
    try {
      await (await rt.data.load(ref)).release();
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      throw new BadRequestError(`${field}: ${e.message}`, { path: dataField(field, ref, e.path) });
    }
  }
  await checkPlan(rt, { ...c, methods: adaptMethods(c) });
  // Here, not only in compareMethods: that runs after θ0 is built and competence-tuned.
  checkInsideRoot(parseExecutor(c.executor), [...inputsOf(c), c.out]);
  checkOut(c);
}

/** The methods adapt runs: the config's, plus both circuit strategies for `auto` to choose between. */
function adaptMethods(c: AdaptConfig): CompareMethod[] {
  return c.circuit.strategy === "auto" ? [...new Set<CompareMethod>([...c.methods, "ctsft", "ctsft-low"])] : c.methods;
}

/** Everything the config reads (model, data files and folders), as absolute paths. */
function inputsOf(c: AdaptConfig): string[] {
  const paths = datasetsOf(c).flatMap(([, d]) => ("path" in d ? [d.path] : "nusax" in d && d.nusax.dir ? [d.nusax.dir] : []));
  if (typeof c.model === "string" && isAbsolute(c.model)) paths.push(c.model);
  return paths.map((p) => resolve(p));
}

/**
 * `out` must be absent, an empty folder, or a folder adapt wrote (it holds adapt's
 * `ctsft-artifact.json`). A folder without it is accepted only when all it holds is this run's
 * own inputs (the demo's `data/`) and ctsft-written folders (an interrupted run's `theta0/`):
 * adapt writes report files, results and `theta0/`/`theta1/` there, and must not replace a
 * `report.md` or `results.json` that someone else wrote. A file is refused.
 */
function checkOut(c: AdaptConfig): void {
  if (!existsSync(c.out)) return;
  if (!statSync(c.out).isDirectory()) {
    throw new BadRequestError(`out ${c.out} exists and is not a directory; choose a folder for the report and checkpoints`, { path: "out" });
  }
  if (readMarker(c.out)?.kind === "adapt") return;
  const inputs = inputsOf(c);
  const foreign = readdirSync(c.out).filter((name) => {
    const entry = resolve(c.out, name);
    if (inputs.some((p) => isInside(entry, p))) return false;
    return !(statSync(entry).isDirectory() && readMarker(entry) !== undefined);
  });
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 5).join(", ") + (foreign.length > 5 ? ` and ${foreign.length - 5} more` : "");
    throw new BadRequestError(
      `out ${c.out} is a non-empty folder that ctsft adapt did not write (it holds ${shown} and no ${MARKER_FILE}); ` +
        "choose a new or empty folder (adapt writes its report, results and theta0/ theta1/ there)",
      { path: "out" },
    );
  }
}

/** Files and folders runAdapt writes into `out` (listed in its marker). */
function adaptOutputs(out: string): string[] {
  const ours = /^(theta[01]|scores-[a-z-]+\.json|circuit(-low)?\.json|report\.(md|html)|heatmap\.png|charts|results\.json)$/;
  return existsSync(out) ? readdirSync(out).filter((n) => ours.test(n)).sort() : [];
}

function writeAdaptMarker(out: string): void {
  const body = { writer: "ctsft", kind: "adapt", files: adaptOutputs(out) };
  writeFileAtomic(join(out, MARKER_FILE), `${JSON.stringify(body, null, 1)}\n`);
}

/**
 * The whole pipeline from a config: θ0 (loaded or built) → competence tuning on the proxy
 * (θ1) → head scoring (with the runtime's faithfulness check; a warning below
 * `FAITHFULNESS_WARN`) and circuit selection → every method on every target and
 * seed, each θ2 re-scored for mechanism preservation unless `preservation: false` → report
 * (report.md, report.html, heatmap.png, charts/ with the Vega-Lite specs, results.json) in `out`.
 *
 * Before any work, every path, dataset and language of the config is checked, and `out` must
 * be absent, empty or a folder adapt wrote (marked by `ctsft-artifact.json`; re-running into it
 * is fine); each refusal is a `BadRequestError` naming the config field.
 */
export async function runAdapt(
  rt: Runtime,
  config: AdaptConfig | AdaptConfigInput,
  hooks: { log?: (line: string) => void; onRun?: (done: number, total: number) => void; title?: string } = {},
): Promise<AdaptResult> {
  const c = AdaptConfig.parse(config);
  const started = performance.now();
  const log = hooks.log ?? (() => undefined);
  await preflight(rt, c);
  mkdirSync(c.out, { recursive: true });
  writeAdaptMarker(c.out);
  let theta0: string;
  if (typeof c.model === "string") {
    theta0 = c.model;
  } else {
    const sources = [c.proxy.train, ...c.targets.map((t) => t.train)];
    const corpus = sources.map(fileOf).filter((f): f is string => f !== undefined);
    if (corpus.length === 0) throw new BadRequestError("building a model needs file or NusaX datasets to train its tokenizer on", { path: "model" });
    const fields = corpusFields(sources);
    log(`building a ${c.model.family} model (${c.model.layers} layers × ${c.model.heads} heads, d_model ${c.model.dModel}) with a tokenizer trained on ${corpus.length} files`);
    theta0 = (await rt.models.create({ ...c.model, corpus, ...(fields && { fields }), out: join(c.out, "theta0") })).path;
  }
  let theta1 = theta0;
  const prompt = { template: c.template, verbalizer: c.verbalizer };
  if (c.competence !== false) {
    const model = await rt.models.load({ source: theta0, dtype: c.dtype, device: c.device });
    await model.save(join(c.out, "theta1"), { dryRun: true }); // refused before training, not after
    const tuning = { epochs: c.competence.epochs, lr: c.competence.lr, batchSize: c.competence.batchSize };
    // Related tasks first, the proxy last: θ1's recorded task is the proxy's.
    for (const t of c.related) {
      log(`competence tuning on the related task ${t.name} (${c.competence.epochs} epochs, lr ${c.competence.lr})`);
      const { body } = await rt.train({ model, data: t.train, valid: t.valid, template: t.template, verbalizer: t.verbalizer, ...tuning }).finalResult();
      if (body.valid) log(`θ1 (so far): ${t.name} validation accuracy ${(body.valid.accuracy * 100).toFixed(1)}%`);
    }
    log(`competence tuning on ${c.proxy.name} (${c.competence.epochs} epochs, lr ${c.competence.lr})`);
    const { body } = await rt.train({ model, data: c.proxy.train, valid: c.proxy.valid, ...prompt, ...tuning }).finalResult();
    log(`θ1: ${c.proxy.name} validation accuracy ${((body.valid?.accuracy ?? 0) * 100).toFixed(1)}%`);
    theta1 = (await model.save(join(c.out, "theta1"))).path;
    await model.release();
  }
  const methods = adaptMethods(c);
  const total = c.targets.length * (c.targetSizes?.length ?? 1) * c.seeds.length * methods.length;
  let done = 0;
  const result: CompareResult = await compareMethods(rt, {
    model: theta1,
    discovery: { ...c.proxy.valid, perClass: c.discovery.perClass },
    sourceTest: c.proxy.test,
    lmLoss: c.lmLoss,
    related: c.related.map(({ name, test, template, verbalizer }) => ({ name, test, template, verbalizer })),
    targets: c.targets,
    methods,
    seeds: c.seeds,
    ...(c.targetSizes && { targetSizes: c.targetSizes }),
    workDir: c.out,
    scorer: c.scorer,
    ...(c.ablationBelow !== undefined && { ablationBelow: c.ablationBelow }),
    topK: c.circuit.topK,
    epochs: c.training.epochs,
    lr: c.training.lr,
    batchSize: c.training.batchSize,
    preservation: c.preservation,
    executor: c.executor,
    log,
    onRun: () => hooks.onRun?.(++done, total),
    onFailed: () => hooks.onRun?.(++done, total),
  });
  // With a curve, auto decides on the runs with the most target data.
  const decisive = result.runs.filter((r) => r.size === (c.targetSizes?.at(-1) ?? null));
  const strategy =
    c.circuit.strategy === "auto"
      ? c.targets.flatMap((t) => {
          const s = chooseStrategy(decisive, t.name);
          return s ? [{ target: t.name, ...s }] : [];
        })
      : [];
  const { curves, verdicts, writeReport } = await import("../report/index.ts");
  const report = await writeReport(c.out, {
    title: hooks.title ?? `ctsft adapt — ${c.proxy.name} → ${c.targets.map((t) => t.name).join(", ")}`,
    createdAt: new Date().toISOString(),
    setup: {
      model: typeof c.model === "string" ? c.model : `${c.model.family} ${c.model.layers}×${c.model.heads} heads, d_model ${c.model.dModel} (from scratch)`,
      proxy: c.proxy.name,
      targets: c.targets.map((t) => t.name).join(", "),
      seeds: c.seeds.join(", "),
      ...(c.targetSizes && { "target training examples": c.targetSizes.join(", ") }),
      scorer: result.fallbackFrom ? `ablation (${result.fallbackFrom} was below ablationBelow)` : c.scorer,
      "circuit size (heads)": c.circuit.topK,
      strategy: c.circuit.strategy,
      executor: result.executor.kind === "ray" ? `ray (${result.executor.workers.length} workers: ${result.executor.workers.map((w) => w.id).join(", ")})` : "serial",
      "source accuracy θ1": `${(result.sourceAccBefore * 100).toFixed(1)}%`,
      ...(result.sourceLmLossBefore !== null && { "source LM loss θ1 (nats/token)": result.sourceLmLossBefore.toFixed(3) }),
      ...Object.fromEntries(Object.entries(result.relatedAccBefore).map(([name, acc]) => [`related task ${name}: accuracy θ1`, `${(acc * 100).toFixed(1)}%`])),
      ...scoringChecks(result),
      ...Object.fromEntries(
        c.targets.map((t) => [`θ1 on ${t.name} before target training`, `${((result.methods.find((r) => r.target === t.name)?.target_acc_before ?? Number.NaN) * 100).toFixed(1)}%`]),
      ),
      ...Object.fromEntries(strategy.map((s) => [`auto: ${s.target}`, s.reason])),
    },
    rows: result.methods,
    scores: result.scores,
    circuit: result.circuit,
    low: result.low,
    curves: result.runs.map((r) => ({ method: r.method, target: r.target, seed: r.seed, losses: r.losses })),
    warnings: result.warnings,
  });
  const summary: AdaptResult = {
    methods: result.methods,
    curves: curves(result.methods),
    verdicts: verdicts(result.methods).map(({ target, size, text, beyondNoise }) => ({ target, size, text, beyondNoise })),
    strategy,
    circuit: result.circuit,
    low: result.low,
    sourceAccBefore: result.sourceAccBefore,
    sourceLmLossBefore: result.sourceLmLossBefore,
    relatedAccBefore: result.relatedAccBefore,
    scorer: result.scorer,
    fallbackFrom: result.fallbackFrom,
    faithfulness: result.faithfulness,
    stability: result.stability,
    warnings: result.warnings,
    failed: result.failed,
    executor: result.executor,
    out: c.out,
    report,
    seconds: (performance.now() - started) / 1000,
  };
  writeFileAtomic(join(c.out, "results.json"), `${JSON.stringify({ ...summary, runs: result.runs }, null, 1)}\n`);
  writeAdaptMarker(c.out);
  return summary;
}
