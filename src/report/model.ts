// The report's input, and the derived tables both renderers share.
import type { CompareRow } from "../api/compare.ts";
import { fixed, headName, MINUS, pct, sig3, signed } from "./format.ts";

/** Everything a `ctsft demo` / `ctsft adapt` report shows. */
export interface ReportData {
  /** e.g. "ctsft demo — synthetic languages". */
  title: string;
  /** ISO timestamp. */
  createdAt: string;
  /** Model, proxy language, targets, seeds, scorer, circuit size, … shown as a key/value table. */
  setup: Record<string, string | number>;
  /** The comparison rows from `compareMethods` (accuracies are fractions 0..1). */
  rows: CompareRow[];
  /** Relevance `[layers][heads]`; null = not scored. */
  scores: (number | null)[][];
  /** The selected heads `[layer, head]` (outlined on the heatmap). */
  circuit: [number, number][];
  /** Low-relevance heads (marked differently on the heatmap). */
  low?: [number, number][];
  /** Per-step training loss of every run. */
  curves: { method: string; target: string; seed: number; losses: number[] }[];
  /** Reasons to distrust the circuit (e.g. low faithfulness of the scorer); shown first. */
  warnings?: string[];
}

/** The results table's header, in order (Markdown and HTML use the same columns). */
export const RESULT_COLUMNS = [
  "method",
  "target",
  "target acc. (%)",
  "source acc. before → after (%)",
  "forgetting (points)",
  "Δ forgetting vs full (points)",
  "Δ target vs full (points)",
  "relevance kept θ1 → θ2 (Spearman)",
  "top-k heads kept (%)",
  "% parameters updated",
  "seconds",
] as const;

/** One results-table row as display strings (unescaped), in {@link RESULT_COLUMNS} order. */
export function resultCells(r: CompareRow): string[] {
  const pm = (m: number | null, s: number | null) => (m === null || !Number.isFinite(m) ? "—" : `${signed(m * 100)} ± ${fixed((s ?? 0) * 100)}`);
  return [
    r.name,
    targetLabel(r),
    `${pct(r.target_acc)} ± ${pct(r.target_acc_std)}`,
    `${pct(r.source_acc_before)} → ${pct(r.source_acc_after)}`,
    `${fixed(r.forgetting * 100)} ± ${pct(r.forgetting_std)}`,
    pm(r.forgetting_vs_full, r.forgetting_vs_full_std),
    pm(r.target_vs_full, r.target_vs_full_std),
    r.preservation_spearman === null ? "—" : `${fixed(r.preservation_spearman, 2)} ± ${fixed(r.preservation_spearman_std, 2)}`,
    r.preservation_topk === null ? "—" : `${pct(r.preservation_topk)} ± ${pct(r.preservation_topk_std)}`,
    sig3(r.params_fraction * 100),
    fixed(r.seconds, 1),
  ];
}

/** A row's target as shown: its name, and on a data-efficiency curve the training-set size. */
export function targetLabel(r: Pick<CompareRow, "target" | "target_size">): string {
  return r.target_size === null ? r.target : `${r.target} (${r.target_size} ex.)`;
}

/** One method's data-efficiency curve on one target: its rows by training-set size. */
export interface Curve {
  target: string;
  method: string;
  /** The rows of that method and target, ascending by `target_size`. */
  points: CompareRow[];
}

/** Every (target, method) curve of rows that have a training-set size (none without `targetSizes`). */
export function curves(rows: CompareRow[]): Curve[] {
  const sized = rows.filter((r) => r.target_size !== null);
  const keys = [...new Map(sized.map((r) => [`${r.target}\u0000${r.name}`, { target: r.target, method: r.name as string }])).values()];
  return keys.map(({ target, method }) => ({
    target,
    method,
    points: sized.filter((r) => r.target === target && r.name === method).sort((a, b) => (a.target_size as number) - (b.target_size as number)),
  }));
}

/** A target's curves as a table: one row per size, one column per method, each cell
 * "target accuracy ± std / forgetting ± std" (display strings). */
export function curveTable(target: string, cs: Curve[]): { header: string[]; rows: string[][] } {
  const mine = cs.filter((c) => c.target === target);
  const sizes = [...new Set(mine.flatMap((c) => c.points.map((p) => p.target_size as number)))].sort((a, b) => a - b);
  const cell = (c: Curve, n: number) => {
    const p = c.points.find((q) => q.target_size === n);
    return p ? `${pct(p.target_acc)} ± ${pct(p.target_acc_std)} / ${fixed(p.forgetting * 100)} ± ${pct(p.forgetting_std)}` : "—";
  };
  return { header: ["target examples", ...mine.map((c) => c.method)], rows: sizes.map((n) => [String(n), ...mine.map((c) => cell(c, n))]) };
}

/** What a curve table's cells mean (both renderers). */
export const CURVE_NOTE =
  "Each cell: target accuracy (%) / forgetting on the source (points), mean ± std over seeds, trained on the first N examples of the target's training set (nested subsets).";

/** The second forgetting table (proxy LM loss, related tasks) as display strings; null when
 * no row has either measure. */
export function forgettingTable(rows: CompareRow[]): { header: string[]; rows: string[][] } | null {
  const lm = rows.some((r) => r.lm_loss_after !== null);
  const related = [...new Set(rows.flatMap((r) => r.related.map((t) => t.name)))];
  if (!lm && related.length === 0) return null;
  const pm = (m: number | null, s: number | null, scale: number, digits: number) => (m === null || !Number.isFinite(m) ? "—" : `${signed(m * scale, digits)} ± ${fixed((s ?? 0) * scale, digits)}`);
  const header = ["method", "target"];
  if (lm) header.push("source LM loss before → after (nats)", "Δ LM loss vs full (nats)");
  for (const name of related) header.push(`${name} acc. before → after (%)`, `${name} Δ forgetting vs full (points)`);
  const body = rows.map((r) => {
    const cells = [r.name as string, targetLabel(r)];
    if (lm) cells.push(r.lm_loss_after === null ? "—" : `${fixed(r.lm_loss_before, 3)} → ${fixed(r.lm_loss_after, 3)} ± ${fixed(r.lm_loss_after_std, 3)}`, pm(r.lm_loss_vs_full, r.lm_loss_vs_full_std, 1, 3));
    for (const name of related) {
      const t = r.related.find((x) => x.name === name);
      cells.push(t ? `${pct(t.acc_before)} → ${pct(t.acc_after)} ± ${pct(t.acc_after_std)}` : "—", t ? pm(t.forgetting_vs_full, t.forgetting_vs_full_std, 100, 1) : "—");
    }
    return cells;
  });
  return { header, rows: body };
}

/** What the second forgetting table means (both renderers). */
export const FORGETTING_NOTE =
  "Forgetting beyond proxy accuracy: the language-model loss (mean next-token negative log-likelihood, nats per token) of the proxy test texts, " +
  "θ1 → θ2 mean ± std over seeds, and the accuracy of each related task θ1 was also tuned on; Δ vs full paired by seed (negative = changed less than full).";

/** What the preservation columns mean (one sentence, both renderers). */
export const PRESERVATION_NOTE =
  "Relevance kept: every θ2 re-scored on the proxy discovery set with θ1's scorer and settings; Spearman correlation of all heads' relevance θ1 vs θ2, " +
  "and the share of θ1's top-k heads (k = circuit size) still in θ2's top-k; — = not measured.";

/** Methods in order of first appearance (rows first, then curves). */
export function methodOrder(data: ReportData): string[] {
  return [...new Set([...data.rows.map((r) => r.name as string), ...data.curves.map((c) => c.method)])];
}

/** Targets in order of first appearance (rows first, then curves). */
export function targetOrder(data: ReportData): string[] {
  return [...new Set([...data.rows.map((r) => r.target), ...data.curves.map((c) => c.target)])];
}

/** Per target and method: the step-wise mean loss over seeds (steps a seed lacks are skipped). */
export function meanCurves(data: ReportData): Map<string, Map<string, { ys: number[]; seeds: number }>> {
  const out = new Map<string, Map<string, { ys: number[]; seeds: number }>>();
  for (const target of targetOrder(data)) {
    const byMethod = new Map<string, { ys: number[]; seeds: number }>();
    for (const method of methodOrder(data)) {
      const runs = data.curves.filter((c) => c.target === target && c.method === method && c.losses.length > 0);
      if (runs.length === 0) continue;
      const len = Math.max(...runs.map((c) => c.losses.length));
      const ys: number[] = [];
      for (let i = 0; i < len; i++) {
        const vals = runs.map((c) => c.losses[i]).filter((v): v is number => v !== undefined && Number.isFinite(v));
        ys.push(vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : Number.NaN);
      }
      byMethod.set(method, { ys, seeds: runs.length });
    }
    if (byMethod.size) out.set(target, byMethod);
  }
  return out;
}

/** The circuit heads with their scores, e.g. "L3H2 (R = 0.41)". */
export function headList(heads: [number, number][], scores: (number | null)[][]): string[] {
  return heads.map(([l, h]) => {
    const v = scores[l]?.[h];
    return v === null || v === undefined || !Number.isFinite(v) ? headName([l, h]) : `${headName([l, h])} (R = ${String(Number(v.toPrecision(3))).replace("-", MINUS)})`;
  });
}
