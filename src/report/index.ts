/**
 * The report of a `ctsft demo` / `ctsft adapt` run: `report.md`, a self-contained
 * `report.html` (inline CSS and SVG; no scripts, no network) and `heatmap.png`.
 *
 * @module
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { heatmapPng } from "./heatmap.ts";
import { renderHtml } from "./html.ts";
import { renderMarkdown } from "./markdown.ts";
import type { ReportData } from "./model.ts";
import { verdicts } from "./verdicts.ts";

export { decodePng, encodePng, type PngImage } from "./png.ts";
export { heatmapLayout, heatmapPng, heatmapSvg, heatGrid, type HeatmapInput } from "./heatmap.ts";
export { diverging, escapeHtml, escapeMarkdown } from "./format.ts";
export { RESULT_COLUMNS, type ReportData } from "./model.ts";
export { t95, verdicts, type Verdict } from "./verdicts.ts";

/** File names inside the report directory. */
export const REPORT_FILES = { markdown: "report.md", html: "report.html", png: "heatmap.png" } as const;

/** Write `data` to `<path>.tmp`, then rename it over `path`: readers see the old or the new file, never a torn one. */
function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Write the report into `dir` (created if missing): `report.md` (setup, results table,
 * verdicts, circuit, links), `report.html` (the same plus a relevance heatmap, loss curves
 * and bar charts as inline SVG; all text escaped; works offline) and `heatmap.png` (the
 * heatmap rasterised, 32 px cells, circuit outlined). Each file is written atomically.
 *
 * @returns the three files' paths.
 */
export function writeReport(dir: string, data: ReportData): { markdown: string; html: string; png: string } {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const vs = verdicts(data.rows);
  const paths = { markdown: join(root, REPORT_FILES.markdown), html: join(root, REPORT_FILES.html), png: join(root, REPORT_FILES.png) };
  writeAtomic(paths.png, heatmapPng({ scores: data.scores, circuit: data.circuit, low: data.low }));
  writeAtomic(paths.html, renderHtml(data, vs, { markdown: REPORT_FILES.markdown, png: REPORT_FILES.png }));
  writeAtomic(paths.markdown, renderMarkdown(data, vs, { html: REPORT_FILES.html, png: REPORT_FILES.png }));
  return paths;
}
