// Which charts a report has and what data each shows, as Vega-Lite specs (one source for
// the HTML page, the PNG and the spec files saved beside the report).
import type { TopLevelSpec } from "vega-lite";
import { type Bar, barSpec, type CurvePoint, curveSpec, heatmapSpec, lineSpec } from "./charts.ts";
import { methodColour } from "./format.ts";
import { curves, meanCurves, methodOrder, type ReportData, targetLabel, targetOrder } from "./model.ts";
import { t95 } from "./verdicts.ts";

/** One chart of the report: where it goes, its file-safe id and its spec. */
export interface Figure {
  /** File-safe name: the spec is saved as `charts/<id>.vl.json`. */
  id: string;
  section: "relevance" | "results" | "curves" | "loss";
  title: string;
  spec: TopLevelSpec;
}

/** Half-width of the 95% Student-t interval of a row's paired Δ forgetting vs full (NaN: no interval, e.g. one seed). */
function halfWidth95(r: ReportData["rows"][number]): number {
  return r.seeds >= 2 && r.forgetting_vs_full_std !== null ? (t95(r.seeds) * r.forgetting_vs_full_std) / Math.sqrt(r.seeds) : Number.NaN;
}

/** The report's figures, in page order; charts without data are left out. */
export function reportFigures(data: ReportData): Figure[] {
  const methods = methodOrder(data);
  const colour = (m: string) => methodColour(m, methods.indexOf(m));
  const out: Figure[] = [];
  const add = (id: string, section: Figure["section"], title: string, spec: TopLevelSpec) => out.push({ id, section, title, spec });
  if (data.scores.length && data.scores.some((r) => r.length)) {
    add("heatmap", "relevance", "Head relevance, layers × heads", heatmapSpec({ scores: data.scores, circuit: data.circuit, ...(data.low ? { low: data.low } : {}) }));
  }
  const bars = (f: (r: ReportData["rows"][number]) => { value: number | null; error?: number | null }): Bar[] =>
    data.rows.flatMap((r) => {
      const { value, error } = f(r);
      return value === null || !Number.isFinite(value) ? [] : [{ group: targetLabel(r), series: r.name, colour: colour(r.name), value, ...(error !== null && error !== undefined && Number.isFinite(error) ? { error } : {}) }];
    });
  const barFigure = (id: string, title: string, bs: Bar[], yLabel: string) => bs.length && add(id, "results", title, barSpec(title, bs, { yLabel }));
  barFigure("target-accuracy", "Target accuracy (%), mean ± std over seeds", bars((r) => ({ value: r.target_acc * 100, error: r.target_acc_std * 100 })), "accuracy (%)");
  barFigure("forgetting", "Forgetting on the source (points), mean ± std", bars((r) => ({ value: r.forgetting * 100, error: r.forgetting_std * 100 })), "points lost");
  barFigure(
    "forgetting-vs-full",
    "Δ forgetting vs full (points), 95% interval",
    bars((r) => ({ value: r.forgetting_vs_full === null ? null : r.forgetting_vs_full * 100, error: halfWidth95(r) * 100 })),
    "points (− = forgot less)",
  );
  barFigure("lm-loss-vs-full", "Δ proxy LM loss vs full (nats), mean ± std", bars((r) => ({ value: r.lm_loss_vs_full, error: r.lm_loss_vs_full_std })), "nats (− = changed less)");
  barFigure("relevance-kept", "Relevance kept θ1 → θ2 (Spearman), mean ± std", bars((r) => ({ value: r.preservation_spearman, error: r.preservation_spearman_std })), "Spearman");
  const cs = curves(data.rows);
  for (const [t, target] of targetOrder(data).entries()) {
    const mine = cs.filter((c) => c.target === target);
    if (!mine.length) continue;
    const points = (f: (r: ReportData["rows"][number]) => { y: number | null; error?: number | null | undefined }): CurvePoint[] =>
      mine.flatMap((c) =>
        c.points.flatMap((r) => {
          const { y, error } = f(r);
          return y === null ? [] : [{ series: c.method, colour: colour(c.method), x: r.target_size as number, y, ...(error !== null && error !== undefined ? { error } : {}) }];
        }),
      );
    const xLabel = "target training examples";
    add(`curve-${t}-accuracy`, "curves", `${target}: target accuracy (%), mean ± std`, curveSpec(`${target}: target accuracy (%), mean ± std`, points((r) => ({ y: r.target_acc * 100, error: r.target_acc_std * 100 })), { xLabel, yLabel: "accuracy (%)" }));
    add(`curve-${t}-forgetting`, "curves", `${target}: forgetting (points), mean ± std`, curveSpec(`${target}: forgetting (points), mean ± std`, points((r) => ({ y: r.forgetting * 100, error: r.forgetting_std * 100 })), { xLabel, yLabel: "points lost", zeroRule: true }));
    const paired = points((r) => ({ y: r.forgetting_vs_full === null ? null : r.forgetting_vs_full * 100, error: halfWidth95(r) * 100 }));
    if (paired.length) add(`curve-${t}-vs-full`, "curves", `${target}: Δ forgetting vs full (points), 95% interval`, curveSpec(`${target}: Δ forgetting vs full (points), 95% interval`, paired, { xLabel, yLabel: "points (− = forgot less)", zeroRule: true }));
  }
  let i = 0;
  for (const [target, byMethod] of meanCurves(data)) {
    const seeds = Math.max(...[...byMethod.values()].map((c) => c.seeds));
    const title = `${target} (mean over ${seeds} seed${seeds === 1 ? "" : "s"})`;
    const series = [...byMethod.entries()].map(([m, c]) => ({ name: m, colour: colour(m), ys: c.ys }));
    add(`loss-${i++}`, "loss", title, lineSpec(title, series, { xLabel: "step", yLabel: "training loss" }));
  }
  return out;
}
