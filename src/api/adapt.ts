import { mkdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { BadRequestError } from "../errors.ts";
import { writeFileAtomic } from "../internal/atomic.ts";
import { AdaptConfig, type AdaptConfigInput } from "../schema/adapt.ts";
import type { DataRef } from "../schema/data.ts";
import type { Faithfulness, ScoreMethod, Stability } from "../schema/scoring.ts";
import { chooseStrategy, type CompareMethod, type CompareResult, type CompareRow, compareMethods } from "./compare.ts";
import type { Runtime } from "./runtime.ts";
import { scoreDiagnostics } from "./scoring.ts";

/** What {@link runAdapt} returns (and `ctsft adapt --json` prints). */
export interface AdaptResult {
  methods: CompareRow[];
  verdicts: { target: string; text: string; beyondNoise: boolean }[];
  strategy: { target: string; strategy: "circuit" | "low"; reason: string }[];
  circuit: [number, number][];
  low: [number, number][];
  sourceAccBefore: number;
  /** The head scorer that chose the circuit. */
  scorer: ScoreMethod;
  /** θ1's scorer checked against exact mean-ablation (null when not reported or the scorer is ablation). */
  faithfulness: Faithfulness | null;
  /** cdt's numerical stability on θ1 (null for other scorers). */
  stability: Stability | null;
  /** Reasons to distrust the circuit (also logged as "warning: …" lines). */
  warnings: string[];
  out: string;
  report: { markdown: string; html: string; png: string };
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
    out: abs(c.out),
  };
}

/** θ1's faithfulness and stability lines as setup entries ("faithfulness (θ1)": "Spearman 0.31 with …"); warnings are shown apart. */
function scoringChecks(r: CompareResult): Record<string, string> {
  const lines = scoreDiagnostics({ method: r.scorer, faithfulness: r.faithfulness, stability: r.stability }).filter((l) => !l.startsWith("warning: "));
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

/**
 * The whole pipeline from a config: θ0 (loaded or built) → competence tuning on the proxy
 * (θ1) → head scoring (with the runtime's faithfulness check; a warning below
 * `FAITHFULNESS_WARN`) and circuit selection → every method on every target and
 * seed, each θ2 re-scored for mechanism preservation unless `preservation: false` → report
 * (report.md, report.html, heatmap.png, results.json) in `out`.
 */
export async function runAdapt(
  rt: Runtime,
  config: AdaptConfig | AdaptConfigInput,
  hooks: { log?: (line: string) => void; onRun?: (done: number, total: number) => void; title?: string } = {},
): Promise<AdaptResult> {
  const c = AdaptConfig.parse(config);
  const started = performance.now();
  const log = hooks.log ?? (() => undefined);
  mkdirSync(c.out, { recursive: true });
  let theta0: string;
  if (typeof c.model === "string") {
    theta0 = c.model;
  } else {
    const corpus = [c.proxy.train, ...c.targets.map((t) => t.train)].map(fileOf).filter((f): f is string => f !== undefined);
    if (corpus.length === 0) throw new BadRequestError("building a model needs file or NusaX datasets to train its tokenizer on", { path: "model" });
    log(`building a ${c.model.family} model (${c.model.layers} layers × ${c.model.heads} heads, d_model ${c.model.dModel}) with a tokenizer trained on ${corpus.length} files`);
    theta0 = (await rt.models.create({ ...c.model, corpus, out: join(c.out, "theta0"), overwrite: true })).path;
  }
  let theta1 = theta0;
  const prompt = { template: c.template, verbalizer: c.verbalizer };
  if (c.competence !== false) {
    log(`competence tuning on ${c.proxy.name} (${c.competence.epochs} epochs, lr ${c.competence.lr})`);
    const model = await rt.models.load({ source: theta0, dtype: c.dtype, device: c.device });
    const { body } = await rt.train({ model, data: c.proxy.train, valid: c.proxy.valid, ...prompt, epochs: c.competence.epochs, lr: c.competence.lr, batchSize: c.competence.batchSize }).finalResult();
    log(`θ1: ${c.proxy.name} validation accuracy ${((body.valid?.accuracy ?? 0) * 100).toFixed(1)}%`);
    theta1 = (await model.save(join(c.out, "theta1"))).path;
    await model.release();
  }
  const methods: CompareMethod[] = c.circuit.strategy === "auto" ? [...new Set<CompareMethod>([...c.methods, "ctsft", "ctsft-low"])] : c.methods;
  const total = c.targets.length * c.seeds.length * methods.length;
  let done = 0;
  const result: CompareResult = await compareMethods(rt, {
    model: theta1,
    discovery: { ...c.proxy.valid, perClass: c.discovery.perClass },
    sourceTest: c.proxy.test,
    targets: c.targets,
    methods,
    seeds: c.seeds,
    workDir: c.out,
    scorer: c.scorer,
    topK: c.circuit.topK,
    epochs: c.training.epochs,
    lr: c.training.lr,
    batchSize: c.training.batchSize,
    preservation: c.preservation,
    log,
    onRun: () => hooks.onRun?.(++done, total),
  });
  const strategy =
    c.circuit.strategy === "auto"
      ? c.targets.flatMap((t) => {
          const s = chooseStrategy(result.runs, t.name);
          return s ? [{ target: t.name, ...s }] : [];
        })
      : [];
  const { verdicts, writeReport } = await import("../report/index.ts");
  const report = writeReport(c.out, {
    title: hooks.title ?? `ctsft adapt — ${c.proxy.name} → ${c.targets.map((t) => t.name).join(", ")}`,
    createdAt: new Date().toISOString(),
    setup: {
      model: typeof c.model === "string" ? c.model : `${c.model.family} ${c.model.layers}×${c.model.heads} heads, d_model ${c.model.dModel} (from scratch)`,
      proxy: c.proxy.name,
      targets: c.targets.map((t) => t.name).join(", "),
      seeds: c.seeds.join(", "),
      scorer: c.scorer,
      "circuit size (heads)": c.circuit.topK,
      strategy: c.circuit.strategy,
      "source accuracy θ1": `${(result.sourceAccBefore * 100).toFixed(1)}%`,
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
    verdicts: verdicts(result.methods).map(({ target, text, beyondNoise }) => ({ target, text, beyondNoise })),
    strategy,
    circuit: result.circuit,
    low: result.low,
    sourceAccBefore: result.sourceAccBefore,
    scorer: result.scorer,
    faithfulness: result.faithfulness,
    stability: result.stability,
    warnings: result.warnings,
    out: c.out,
    report,
    seconds: (performance.now() - started) / 1000,
  };
  writeFileAtomic(join(c.out, "results.json"), `${JSON.stringify({ ...summary, runs: result.runs }, null, 1)}\n`);
  return summary;
}
