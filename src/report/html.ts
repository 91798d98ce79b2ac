// report.html: one self-contained page (inline CSS and SVG, no scripts, no external URLs).
import type { Figure } from "./figures.ts";
import { escapeHtml as e, methodColour } from "./format.ts";
import { CURVE_NOTE, curves, curveTable, FORGETTING_NOTE, forgettingTable, headList, methodOrder, PRESERVATION_NOTE, type ReportData, RESULT_COLUMNS, resultCells, targetOrder } from "./model.ts";
import type { Verdict } from "./verdicts.ts";

/** A figure with its chart rendered to SVG. */
export interface RenderedFigure extends Figure {
  svg: string;
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d1d1f;background:#fff}
main{max-width:1180px;margin:0 auto}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #ddd}
.meta{color:#666;margin:0 0 16px}
.top{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.top>section{flex:1 1 320px;min-width:0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e6e6e6;text-align:left;vertical-align:top}
th{background:#f5f5f7;font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
td.n{text-align:right;white-space:nowrap}
#results{width:100%;font-size:13px}
#results th,#results td{padding:4px 8px}
#results thead th{vertical-align:bottom;font-size:12px}
#results tr.ctsft td{background:#fff6ee}
#results tr.first td{border-top:2px solid #bbb}
#results td.m{font-weight:600;white-space:nowrap}
#results td.t{min-width:7em;max-width:16em;overflow-wrap:anywhere}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;vertical-align:baseline}
ul.verdicts{list-style:none;padding:0;margin:0}
ul.verdicts li{margin:6px 0;padding:8px 12px;border-left:4px solid #999;background:#f7f7f7;overflow-wrap:anywhere}
ul.verdicts li.yes{border-color:#1a7f37;background:#eef8f0}
.badge{display:inline-block;font-size:11px;font-weight:600;padding:1px 7px;border-radius:9px;margin-right:8px;background:#ddd;color:#333}
li.yes .badge{background:#1a7f37;color:#fff}
ul.warnings{list-style:none;padding:0;margin:0}
ul.warnings li{margin:6px 0;padding:8px 12px;border-left:4px solid #bf8700;background:#fff8c5;overflow-wrap:anywhere}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure.chart{margin:0}
figure.chart figcaption{font-weight:600}
svg{max-width:100%;height:auto}
.note{color:#666;font-size:13px}
code{font-size:12.5px}
footer{margin-top:32px;color:#666;font-size:12px}
`;

/** An SVG document as an element inside HTML: the namespace declarations go (HTML's parser
 * supplies them), so the page names no URL at all. */
export function inlineSvg(svg: string): string {
  return svg.replace(/ xmlns(:xlink)?="[^"]*"/g, "");
}

/** The figures of one section, each in a `<figure>` (its SVG inline), or a note when there are none. */
function figuresOf(figures: RenderedFigure[], section: Figure["section"], none: string): string {
  const mine = figures.filter((f) => f.section === section);
  if (!mine.length) return `<p class="note">${e(none)}</p>`;
  const one = (f: RenderedFigure) => `<figure class="chart ${f.id === "heatmap" ? "heatmap" : ""}" id="fig-${e(f.id)}" aria-label="${e(f.title)}">${inlineSvg(f.svg)}</figure>`;
  return section === "relevance" ? mine.map(one).join("") : `<div class="charts">${mine.map(one).join("\n")}</div>`;
}

/** The HTML report as one string; `figures` are the charts, rendered (see `reportFigures`). */
export function renderHtml(data: ReportData, vs: Verdict[], files: { markdown: string; png: string; charts: string }, figures: RenderedFigure[]): string {
  const methods = methodOrder(data);
  const colour = (m: string) => methodColour(m, methods.indexOf(m));
  const o: string[] = [];
  o.push(`<!DOCTYPE html>`, `<html lang="en">`, `<head>`, `<meta charset="utf-8">`);
  // Belt and braces: even if something slipped through escaping, nothing could load or run.
  o.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  o.push(`<meta name="viewport" content="width=device-width, initial-scale=1">`, `<title>${e(data.title)}</title>`, `<style>${CSS}</style>`, `</head>`, `<body><main>`);
  o.push(`<h1>${e(data.title)}</h1>`, `<p class="meta">Created ${e(data.createdAt)}</p>`);
  if (data.warnings?.length) o.push(`<ul class="warnings" id="warnings">${data.warnings.map((w) => `<li><b>warning:</b> ${e(w)}</li>`).join("")}</ul>`);

  // Setup beside the heatmap, so the first screen shows both.
  o.push(`<div class="top"><section><h2>Setup</h2>`);
  const setup = Object.entries(data.setup);
  o.push(setup.length ? `<table id="setup"><tbody>${setup.map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(String(v))}</td></tr>`).join("")}</tbody></table>` : `<p class="note">None given.</p>`);
  o.push(`<h2>Circuit</h2>`);
  o.push(`<p><b>Circuit (${data.circuit.length}):</b> ${data.circuit.length ? e(headList(data.circuit, data.scores).join(", ")) : "none"}</p>`);
  if (data.low) o.push(`<p><b>Low relevance (${data.low.length}):</b> ${data.low.length ? e(headList(data.low, data.scores).join(", ")) : "none"}</p>`);
  o.push(`</section><section><h2>Head relevance</h2>`, figuresOf(figures, "relevance", "No relevance scores."), `</section></div>`);

  o.push(`<h2>Verdict: CT-SFT vs full fine-tuning</h2>`);
  if (vs.length) {
    o.push(`<ul class="verdicts">`);
    for (const v of vs) o.push(`<li class="${v.beyondNoise ? "yes" : "no"}"><span class="badge">${v.beyondNoise ? "beyond seed noise" : "not beyond seed noise"}</span>${e(v.text)}</li>`);
    o.push(`</ul>`);
  } else o.push(`<p class="note">No targets.</p>`);
  o.push(`<p class="note">Beyond seed noise: the 95% Student-t interval of the per-seed paired difference in forgetting (CT-SFT − full) lies wholly below zero.</p>`);

  o.push(`<h2>Results</h2>`);
  if (data.rows.length) {
    o.push(`<div class="scroll"><table id="results"><thead><tr>${RESULT_COLUMNS.map((c) => `<th scope="col">${e(c)}</th>`).join("")}</tr></thead><tbody>`);
    let prev: string | undefined;
    for (const r of data.rows) {
      const cells = resultCells(r);
      const cls = [r.name === "ctsft" ? "ctsft" : "", prev !== undefined && cells[1] !== prev ? "first" : ""].filter(Boolean).join(" ");
      prev = cells[1];
      o.push(
        `<tr${cls ? ` class="${cls}"` : ""}><td class="m"><span class="swatch" style="background:${e(colour(r.name))}"></span>${e(cells[0] as string)}</td><td class="t">${e(cells[1] as string)}</td>${cells
          .slice(2)
          .map((c) => `<td class="n">${e(c)}</td>`)
          .join("")}</tr>`,
      );
    }
    o.push(`</tbody></table></div>`);
    o.push(
      `<p class="note">Means ± standard deviations over seeds. Forgetting = source accuracy before − after (points). Δ vs full: paired by seed against full fine-tuning on the same target; negative Δ forgetting = forgot less than full. ${e(PRESERVATION_NOTE)}</p>`,
    );

    o.push(figuresOf(figures, "results", "No data."));
  } else o.push(`<p class="note">No results.</p>`);

  const forgetting = forgettingTable(data.rows);
  if (forgetting) {
    o.push(
      `<h2 id="forgetting">Forgetting beyond proxy accuracy</h2><div class="scroll"><table id="forgetting-table"><thead><tr>${forgetting.header.map((h) => `<th scope="col">${e(h)}</th>`).join("")}</tr></thead><tbody>${forgetting.rows
        .map((r) => `<tr>${r.map((c, i) => `<td class="${i < 2 ? "" : "n"}">${e(c)}</td>`).join("")}</tr>`)
        .join("")}</tbody></table></div><p class="note">${e(FORGETTING_NOTE)}</p>`,
    );
  }

  const cs = curves(data.rows);
  if (cs.length) {
    o.push(`<h2 id="curves">Data-efficiency curves</h2>`, figuresOf(figures, "curves", "No curve data."));
    for (const target of targetOrder(data)) {
      const t = curveTable(target, cs);
      if (!t.rows.length) continue;
      o.push(
        `<h3>${e(target)}</h3><div class="scroll"><table class="curve"><thead><tr>${t.header.map((h) => `<th scope="col">${e(h)}</th>`).join("")}</tr></thead><tbody>${t.rows
          .map((r) => `<tr>${r.map((c, i) => `<td class="${i ? "n" : ""}">${e(c)}</td>`).join("")}</tr>`)
          .join("")}</tbody></table></div>`,
      );
    }
    o.push(`<p class="note">${e(CURVE_NOTE)}</p>`);
  }

  o.push(`<h2>Training loss</h2>`, figuresOf(figures, "loss", "No training-loss data."));

  o.push(
    `<footer>Also in this directory: <a href="${e(encodeURI(files.markdown))}">${e(files.markdown)}</a>, <a href="${e(encodeURI(files.png))}">${e(files.png)}</a> and the charts' Vega-Lite specs in <a href="${e(encodeURI(files.charts))}/">${e(files.charts)}/</a> (restyle and re-render them with any Vega-Lite tool). Generated by ctsft; this page needs no network and runs no scripts.</footer>`,
  );
  o.push(`</main></body></html>`, "");
  return o.join("\n");
}
