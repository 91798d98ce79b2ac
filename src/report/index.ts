/**
 * The report of a `ctsft demo` / `ctsft adapt` run: `report.md`, a self-contained
 * `report.html` (inline CSS and SVG; no scripts, no network), `heatmap.png`, and the
 * charts' Vega-Lite specs in `charts/`.
 *
 * @module
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { reportFigures } from "./figures.ts";
import { renderHtml } from "./html.ts";
import { renderMarkdown } from "./markdown.ts";
import type { ReportData } from "./model.ts";
import { renderSvg, svgToPng } from "./render.ts";
import { verdicts } from "./verdicts.ts";

export { escapeHtml, escapeMarkdown } from "./format.ts";
export { type Curve, curves, RESULT_COLUMNS, type ReportData } from "./model.ts";
export { t95, verdicts, type Verdict } from "./verdicts.ts";

/** File and folder names inside the report directory. */
export const REPORT_FILES = { markdown: "report.md", html: "report.html", png: "heatmap.png", charts: "charts" } as const;

/** Write `data` to `<path>.tmp`, then rename it over `path`: readers see the old or the new file, never a torn one. */
function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Write the report into `dir` (created if missing): `report.md` (setup, results table,
 * verdicts, circuit, links), `report.html` (the same plus the relevance heatmap, bar charts
 * and loss curves as inline SVG; all text escaped; works offline), `heatmap.png` (the heatmap
 * rasterised at 2×) and `charts/<id>.vl.json`, the Vega-Lite spec of every chart (data
 * included), so a user can restyle and re-render them; with data-efficiency curves (rows
 * with a `target_size`) also `charts/curve-*.png`, linked from report.md. The charts are rendered by vega and
 * resvg, offline. Each file is written atomically.
 *
 * @returns the files' paths (`charts`: the specs' folder).
 */
export async function writeReport(dir: string, data: ReportData): Promise<{ markdown: string; html: string; png: string; charts: string }> {
  const root = resolve(dir);
  const paths = { markdown: join(root, REPORT_FILES.markdown), html: join(root, REPORT_FILES.html), png: join(root, REPORT_FILES.png), charts: join(root, REPORT_FILES.charts) };
  mkdirSync(paths.charts, { recursive: true });
  const vs = verdicts(data.rows);
  const figures = await Promise.all(reportFigures(data).map(async (f) => ({ ...f, svg: await renderSvg(f.spec) })));
  for (const f of figures) writeAtomic(join(paths.charts, `${f.id}.vl.json`), `${JSON.stringify(f.spec, null, 1)}\n`);
  // The data-efficiency curves also as PNGs (report.md shows them; the page has the SVGs).
  const curvePngs = figures.filter((f) => f.section === "curves").map((f) => ({ title: f.title, path: `${REPORT_FILES.charts}/${f.id}.png`, svg: f.svg }));
  for (const f of curvePngs) writeAtomic(join(root, f.path), svgToPng(f.svg, 2));
  const heatmap = figures.find((f) => f.id === "heatmap");
  // An empty grid still gets a (blank) PNG, so the report's links never dangle.
  writeAtomic(paths.png, svgToPng(heatmap?.svg ?? `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><text x="8" y="24" font-size="12">No relevance scores.</text></svg>`, 2));
  writeAtomic(paths.html, renderHtml(data, vs, { markdown: REPORT_FILES.markdown, png: REPORT_FILES.png, charts: REPORT_FILES.charts }, figures));
  writeAtomic(paths.markdown, renderMarkdown(data, vs, { html: REPORT_FILES.html, png: REPORT_FILES.png, curvePngs }));
  return paths;
}
