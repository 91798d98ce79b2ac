// report.md
import { escapeMarkdown as md } from "./format.ts";
import { CURVE_NOTE, curves, curveTable, FORGETTING_NOTE, forgettingTable, headList, PRESERVATION_NOTE, type ReportData, RESULT_COLUMNS, resultCells, targetOrder } from "./model.ts";
import type { Verdict } from "./verdicts.ts";

function table(header: readonly string[], rows: string[][], align?: ("l" | "r")[]): string {
  const sep = header.map((_, i) => (align?.[i] === "r" ? "---:" : "---"));
  return [header, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** The Markdown report: warnings, setup, results, verdicts, circuit and links to the other files. */
export function renderMarkdown(data: ReportData, vs: Verdict[], files: { html: string; png: string; curvePngs?: { title: string; path: string }[] }): string {
  const out: string[] = [];
  out.push(`# ${md(data.title)}`, "", `Created ${md(data.createdAt)}.`, "");
  if (data.warnings?.length) out.push("## Warnings", "", data.warnings.map((w) => `- **warning:** ${md(w)}`).join("\n"), "");
  out.push("## Setup", "");
  const setup = Object.entries(data.setup);
  out.push(setup.length ? table(["setting", "value"], setup.map(([k, v]) => [md(k), md(String(v))])) : "(none given)", "");

  out.push("## Results", "");
  if (data.rows.length) {
    out.push(
      table(
        RESULT_COLUMNS,
        data.rows.map((r) => resultCells(r).map(md)),
        RESULT_COLUMNS.map((_, i) => (i < 2 ? "l" : "r")),
      ),
      "",
      "Means ± standard deviations over seeds. Accuracies in percent; forgetting = source accuracy before − after, in points. " +
        "Δ vs full: paired by seed against full fine-tuning on the same target (negative Δ forgetting = forgot less than full). " +
        PRESERVATION_NOTE,
      "",
    );
  } else out.push("No results.", "");

  const forgetting = forgettingTable(data.rows);
  if (forgetting) {
    out.push("## Forgetting beyond proxy accuracy", "", table(forgetting.header.map(md), forgetting.rows.map((r) => r.map(md)), forgetting.header.map((_, i) => (i < 2 ? "l" : "r"))), "", FORGETTING_NOTE, "");
  }

  const cs = curves(data.rows);
  if (cs.length) {
    out.push("## Data-efficiency curves", "");
    for (const target of targetOrder(data)) {
      const t = curveTable(target, cs);
      if (!t.rows.length) continue;
      out.push(`### ${md(target)}`, "", table(t.header.map(md), t.rows.map((r) => r.map(md))), "");
    }
    out.push(CURVE_NOTE, "");
    for (const f of files.curvePngs ?? []) out.push(`![${md(f.title)}](${encodeURI(f.path)})`, "");
  }

  out.push("## Verdict", "");
  out.push(vs.length ? vs.map((v) => `- ${md(v.text)}`).join("\n") : "No targets.", "");
  out.push("Beyond seed noise means the 95% Student-t interval of the paired difference in forgetting (CT-SFT − full) lies wholly below zero.", "");

  out.push("## Circuit", "");
  const layers = data.scores.length;
  const heads = data.scores.reduce((m, r) => Math.max(m, r.length), 0);
  const scored = data.scores.flat().filter((v) => v !== null && Number.isFinite(v)).length;
  out.push(`Relevance scored for ${scored} of ${layers * heads} heads (${layers} layers × ${heads} heads).`, "");
  out.push(`- Circuit (${data.circuit.length} heads): ${data.circuit.length ? md(headList(data.circuit, data.scores).join(", ")) : "none"}`);
  if (data.low) out.push(`- Low-relevance heads (${data.low.length}): ${data.low.length ? md(headList(data.low, data.scores).join(", ")) : "none"}`);
  out.push("");

  out.push("## Files", "");
  out.push(`- [${md(files.html)}](${encodeURI(files.html)}): the full report with charts (opens offline)`);
  out.push(`- [${md(files.png)}](${encodeURI(files.png)}): the relevance heatmap`, "");
  out.push(`![relevance heatmap: layers × heads, circuit outlined](${encodeURI(files.png)})`, "");
  return out.join("\n");
}
