// Which charts a report has and what data each shows, as Vega-Lite specs (one source for
// the HTML page, the PNG and the spec files saved beside the report).
import type { TopLevelSpec } from "vega-lite";
import { type Bar, barSpec, heatmapSpec, lineSpec } from "./charts.ts";
import { methodColour } from "./format.ts";
import { meanCurves, methodOrder, type ReportData } from "./model.ts";
import { t95 } from "./verdicts.ts";

/** One chart of the report: where it goes, its file-safe id and its spec. */
export interface Figure {
  /** File-safe name: the spec is saved as `charts/<id>.vl.json`. */
  id: string;
  section: "relevance" | "results" | "loss";
  title: string;
  spec: TopLevelSpec;
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
      return value === null || !Number.isFinite(value) ? [] : [{ group: r.target, series: r.name, colour: colour(r.name), value, ...(error !== null && error !== undefined && Number.isFinite(error) ? { error } : {}) }];
    });
  const barFigure = (id: string, title: string, bs: Bar[], yLabel: string) => bs.length && add(id, "results", title, barSpec(title, bs, { yLabel }));
  barFigure("target-accuracy", "Target accuracy (%), mean ± std over seeds", bars((r) => ({ value: r.target_acc * 100, error: r.target_acc_std * 100 })), "accuracy (%)");
  barFigure("forgetting", "Forgetting on the source (points), mean ± std", bars((r) => ({ value: r.forgetting * 100, error: r.forgetting_std * 100 })), "points lost");
  barFigure(
    "forgetting-vs-full",
    "Δ forgetting vs full (points), 95% interval",
    bars((r) => ({
      value: r.forgetting_vs_full === null ? null : r.forgetting_vs_full * 100,
      error: r.seeds >= 2 && r.forgetting_vs_full_std !== null ? (t95(r.seeds) * r.forgetting_vs_full_std * 100) / Math.sqrt(r.seeds) : null,
    })),
    "points (− = forgot less)",
  );
  barFigure("relevance-kept", "Relevance kept θ1 → θ2 (Spearman), mean ± std", bars((r) => ({ value: r.preservation_spearman, error: r.preservation_spearman_std })), "Spearman");
  let i = 0;
  for (const [target, byMethod] of meanCurves(data)) {
    const seeds = Math.max(...[...byMethod.values()].map((c) => c.seeds));
    const title = `${target} (mean over ${seeds} seed${seeds === 1 ? "" : "s"})`;
    const series = [...byMethod.entries()].map(([m, c]) => ({ name: m, colour: colour(m), ys: c.ys }));
    add(`loss-${i++}`, "loss", title, lineSpec(title, series, { xLabel: "step", yLabel: "training loss" }));
  }
  return out;
}
