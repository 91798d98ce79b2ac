// The run report: verdict statistics, report.md / report.html / heatmap.png / charts/ written
// from a hand-built comparison, the specs re-rendered, the PNG decoded back (pngjs), and the
// HTML rendered in headless Chromium.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CompareMethod, type CompareRow, meanStd } from "../../../src/api/compare.ts";
import { PNG } from "pngjs";
import { compile } from "vega-lite";
import { inlineSvg } from "../../../src/report/html.ts";
import { hex, RDBU } from "../../../src/report/format.ts";
import { escapeHtml, escapeMarkdown, type ReportData, t95, verdicts, writeReport } from "../../../src/report/index.ts";
import { renderSvg } from "../../../src/report/render.ts";
import { chromiumSkip, chromiumVersion, renderedDom, screenshot } from "../helpers/chromium.ts";

const METHODS: CompareMethod[] = ["full", "ctsft", "ctsft-low", "random", "norms", "lora"];
const EVIL = 'sun<script>alert("x")</script>';
const TARGETS = ["jav", EVIL];
const SEEDS = [0, 1, 2];
const BEFORE = 0.82;

/** Deterministic per-run noise in [−1, 1]. */
function noise(...k: number[]): number {
  let h = 2166136261;
  for (const v of k) h = Math.imul(h ^ (v + 7919), 16777619) >>> 0;
  return ((h % 2001) - 1000) / 1000;
}

interface Run {
  method: CompareMethod;
  target: string;
  seed: number;
  targetAcc: number;
  sourceAfter: number;
  paramsFraction: number;
  seconds: number;
}

// Source accuracy lost (fraction) per method; on "jav" CT-SFT forgets clearly less than full
// on every seed, on the other target the per-seed differences scatter around zero.
const FORGET: Record<CompareMethod, number> = { full: 0.09, ctsft: 0.03, "ctsft-low": 0.05, random: 0.06, norms: 0.01, lora: 0.04 };
const ACC: Record<CompareMethod, number> = { full: 0.71, ctsft: 0.69, "ctsft-low": 0.58, random: 0.62, norms: 0.55, lora: 0.68 };
const PARAMS: Record<CompareMethod, number> = { full: 1, ctsft: 0.00412, "ctsft-low": 0.00412, random: 0.00412, norms: 0.000187, lora: 0.0123 };
// Relevance kept θ1 → θ2 (Spearman over heads) and the share of the top-3 heads kept, per method.
const KEPT: Record<CompareMethod, [number, number]> = { full: [0.42, 1 / 3], ctsft: [0.71, 2 / 3], "ctsft-low": [0.93, 1], random: [0.85, 2 / 3], norms: [0.97, 1], lora: [0.66, 2 / 3] };
const WARNING = "cdt relevance on θ1 agrees poorly with exact ablation (Spearman is 0.19, below 0.5): the circuit may not be trustworthy; consider `scorer: ablation` <b>";

function makeRuns(): Run[] {
  const runs: Run[] = [];
  TARGETS.forEach((target, ti) => {
    for (const seed of SEEDS) {
      METHODS.forEach((method, mi) => {
        const spread = ti === 0 ? 0.004 : 0.05;
        const f = FORGET[method] + (ti === 1 && method === "ctsft" ? 0.05 : 0) + spread * noise(ti, seed, mi);
        runs.push({
          method,
          target,
          seed,
          targetAcc: ACC[method] - 0.05 * ti + 0.02 * noise(ti, seed, mi, 1),
          sourceAfter: BEFORE - f,
          paramsFraction: PARAMS[method],
          seconds: 3 + mi + seed * 0.1,
        });
      });
    }
  });
  return runs;
}

/** The same aggregation as `compareMethods` (means, stds, paired differences against full). */
function summarize(runs: Run[]): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const target of TARGETS) {
    const full = new Map(runs.filter((r) => r.target === target && r.method === "full").map((r) => [r.seed, r]));
    for (const method of METHODS) {
      const mine = runs.filter((r) => r.target === target && r.method === method);
      const fullOf = (r: Run) => full.get(r.seed) as Run;
      const [acc, accStd] = meanStd(mine.map((r) => r.targetAcc));
      const [forget, forgetStd] = meanStd(mine.map((r) => BEFORE - r.sourceAfter));
      const dF = method === "full" ? null : meanStd(mine.map((r) => fullOf(r).sourceAfter - r.sourceAfter));
      const dT = method === "full" ? null : meanStd(mine.map((r) => r.targetAcc - fullOf(r).targetAcc));
      rows.push({
        name: method,
        target,
        target_size: null,
        seeds: mine.length,
        target_acc_before: 0.4,
        target_acc: acc,
        target_acc_std: accStd,
        source_acc_before: BEFORE,
        source_acc_after: meanStd(mine.map((r) => r.sourceAfter))[0],
        forgetting: forget,
        forgetting_std: forgetStd,
        forgetting_vs_full: dF?.[0] ?? null,
        forgetting_vs_full_std: dF?.[1] ?? null,
        target_vs_full: dT?.[0] ?? null,
        target_vs_full_std: dT?.[1] ?? null,
        // LM loss grows with forgetting here; one related task, forgotten half as much.
        lm_loss_before: 2.5,
        lm_loss_after: 2.5 + forget,
        lm_loss_after_std: forgetStd,
        lm_loss_vs_full: dF?.[0] ?? null,
        lm_loss_vs_full_std: dF?.[1] ?? null,
        related: [
          {
            name: "nli",
            acc_before: 0.6,
            acc_after: 0.6 - forget / 2,
            acc_after_std: forgetStd / 2,
            forgetting: forget / 2,
            forgetting_std: forgetStd / 2,
            forgetting_vs_full: dF ? dF[0] / 2 : null,
            forgetting_vs_full_std: dF ? dF[1] / 2 : null,
          },
        ],
        params_fraction: meanStd(mine.map((r) => r.paramsFraction))[0],
        seconds: meanStd(mine.map((r) => r.seconds))[0],
        preservation_spearman: KEPT[method][0],
        preservation_spearman_std: 0.05,
        preservation_topk: KEPT[method][1],
        preservation_topk_std: 0,
      });
    }
  }
  return rows;
}

const SCORES: (number | null)[][] = [
  [0.12, -0.03, null, 0.4],
  [0.02, 0.31, -0.22, null],
  [null, 0.05, 0.01, -0.08],
  [0.27, -0.4, 0.09, 0.0],
];

function reportData(): ReportData {
  const curves: ReportData["curves"] = [];
  TARGETS.forEach((target, ti) =>
    METHODS.forEach((method, mi) => {
      for (const seed of SEEDS) {
        const losses = Array.from({ length: 45 }, (_, s) => 1.1 * Math.exp(-s / (8 + 3 * mi)) + 0.25 + 0.05 * ti + 0.03 * noise(ti, mi, seed, s));
        curves.push({ method, target, seed, losses });
      }
    }),
  );
  return {
    title: "ctsft demo — synthetic languages",
    createdAt: "2026-03-01T12:00:00.000Z",
    setup: { model: "tiny-llama (4 layers × 4 heads)", "proxy language": "src", targets: TARGETS.join(", "), seeds: SEEDS.join(", "), scorer: "cdt", "circuit size": 3, epochs: 3 },
    rows: summarize(makeRuns()),
    scores: SCORES,
    circuit: [
      [0, 3],
      [1, 1],
      [3, 0],
    ],
    low: [
      [3, 1],
      [1, 2],
    ],
    curves,
    warnings: [WARNING],
  };
}

function row(over: Partial<CompareRow>): CompareRow {
  return {
    name: "ctsft",
    target: "t",
    target_size: null,
    lm_loss_before: null,
    lm_loss_after: null,
    lm_loss_after_std: null,
    lm_loss_vs_full: null,
    lm_loss_vs_full_std: null,
    related: [],
    seeds: 3,
    target_acc_before: 0.4,
    target_acc: 0.7,
    target_acc_std: 0.01,
    source_acc_before: 0.8,
    source_acc_after: 0.78,
    forgetting: 0.02,
    forgetting_std: 0.01,
    forgetting_vs_full: -0.05,
    forgetting_vs_full_std: 0.01,
    target_vs_full: -0.013,
    target_vs_full_std: 0.008,
    params_fraction: 0.004,
    seconds: 1,
    preservation_spearman: 0.8,
    preservation_spearman_std: 0.1,
    preservation_topk: 0.5,
    preservation_topk_std: 0,
    ...over,
  };
}

describe("verdicts", () => {
  it("uses the t table: n=2 → 12.71, 3 → 4.30, 7 → 2.45, 1 → no interval", () => {
    assert.equal(t95(2), 12.706);
    assert.equal(t95(3), 4.303);
    assert.equal(t95(6), 2.571);
    assert.equal(t95(7), 2.447);
    assert.equal(t95(1), Number.POSITIVE_INFINITY);
  });

  it("calls an interval wholly below zero beyond seed noise, and says so from the numbers", () => {
    const [v] = verdicts([row({ target: "jav" })]);
    assert.ok(v);
    assert.equal(v.beyondNoise, true);
    assert.ok(Math.abs(v.diff - -5) < 1e-9);
    assert.ok(Math.abs(v.halfWidth - (4.303 * 1) / Math.sqrt(3)) < 1e-9);
    assert.equal(
      v.text,
      "jav: CT-SFT forgot 5.0 ± 1.0 points less than full fine-tuning (paired over 3 seeds, mean ± std; 95% interval of the difference −7.5…−2.5 points): beyond seed noise. Target accuracy vs full: −1.3 ± 0.8 points.",
    );
  });

  it("does not call an interval that contains zero", () => {
    const [v] = verdicts([row({ target: "jav", forgetting_vs_full: -0.021, forgetting_vs_full_std: 0.03 })]);
    assert.ok(v);
    assert.equal(v.beyondNoise, false);
    assert.equal(
      v.text,
      "jav: CT-SFT forgot 2.1 ± 3.0 points less than full fine-tuning (paired over 3 seeds, mean ± std; 95% interval of the difference −9.6…+5.4 points): not beyond seed noise. Target accuracy vs full: −1.3 ± 0.8 points.",
    );
  });

  it("never calls one seed beyond noise, however large the difference", () => {
    const [v] = verdicts([row({ seeds: 1, forgetting_vs_full: -0.3, forgetting_vs_full_std: 0 })]);
    assert.ok(v);
    assert.equal(v.beyondNoise, false);
    assert.equal(v.halfWidth, Number.POSITIVE_INFINITY);
    assert.match(v.text, /forgot 30\.0 ± 0\.0 points less .*\(a single seed: no interval\): one seed cannot separate/);
  });

  it("reports CT-SFT forgetting more as no advantage, and a missing pair as such", () => {
    const vs = verdicts([row({ target: "a", forgetting_vs_full: 0.05, forgetting_vs_full_std: 0.005 }), row({ target: "b", forgetting_vs_full: null, forgetting_vs_full_std: null }), row({ target: "c", name: "full" })]);
    assert.equal(vs.length, 3);
    assert.equal(vs[0]?.beyondNoise, false);
    assert.match(vs[0]?.text as string, /forgot 5\.0 ± 0\.5 points more than full .*: CT-SFT forgot more, beyond seed noise \(no advantage\)\./);
    assert.ok(Number.isNaN(vs[1]?.diff) && vs[1]?.beyondNoise === false);
    assert.match(vs[2]?.text as string, /^c: no paired comparison/);
  });
});

describe("writeReport", () => {
  let dir: string;
  let paths: { markdown: string; html: string; png: string; charts: string };
  let data: ReportData;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ctsft-report-"));
    data = reportData();
    paths = await writeReport(join(dir, "out", "demo"), data);
  });
  after(() => {
    if (!process.env.CTSFT_KEEP_REPORT) rmSync(dir, { recursive: true, force: true });
    else console.log(`report kept in ${dir}`);
  });

  it("writes the three files and the charts' specs atomically into a new directory", () => {
    for (const p of [paths.markdown, paths.html, paths.png]) assert.ok(existsSync(p) && statSync(p).size > 100, p);
    assert.deepEqual(readdirSync(join(dir, "out", "demo")).sort(), ["charts", "heatmap.png", "report.html", "report.md"]);
    const specs = readdirSync(paths.charts).sort();
    assert.deepEqual(specs, ["forgetting-vs-full.vl.json", "forgetting.vl.json", "heatmap.vl.json", "lm-loss-vs-full.vl.json", "loss-0.vl.json", "loss-1.vl.json", "relevance-kept.vl.json", "target-accuracy.vl.json"]);
  });

  it("each saved spec is plain Vega-Lite with its data inline, and re-renders to the SVG in the page", async () => {
    const html = readFileSync(paths.html, "utf8");
    for (const f of readdirSync(paths.charts)) {
      const spec = JSON.parse(readFileSync(join(paths.charts, f), "utf8"));
      assert.match(spec.$schema, /vega-lite\/v6/);
      assert.ok(Array.isArray(spec.data.values) && spec.data.values.length > 0, f);
      compile(spec); // throws on an invalid spec
      // vega numbers gradients per process (gradient_0, gradient_1, …): compare without them.
      const plain = (t: string) => t.replace(/gradient_\d+/g, "gradient");
      assert.ok(plain(html).includes(plain(inlineSvg(await renderSvg(spec)))), `${f}: the page does not hold its rendering`);
    }
    const heat = JSON.parse(readFileSync(join(paths.charts, "heatmap.vl.json"), "utf8"));
    assert.equal(heat.data.values.length, 16);
    assert.deepEqual(
      heat.data.values.filter((c: { circuit: boolean }) => c.circuit).map((c: { layer: string; head: string }) => `${c.layer}${c.head}`),
      ["L0H3", "L1H1", "L3H0"],
    );
  });

  it("the verdicts on the realistic data: jav beyond noise, the other target not", () => {
    const vs = verdicts(data.rows);
    assert.deepEqual(
      vs.map((v) => [v.target, v.beyondNoise]),
      [
        ["jav", true],
        [EVIL, false],
      ],
    );
  });

  it("report.md has the setup, every method, each verdict, the circuit and the links", () => {
    const md = readFileSync(paths.markdown, "utf8");
    assert.ok(md.startsWith("# ctsft demo — synthetic languages\n"));
    for (const m of METHODS) assert.match(md, new RegExp(`^\\| ${m.replace("-", "\\-")} \\| `, "m"), m);
    for (const v of verdicts(data.rows)) assert.ok(md.includes(`- ${escapeMarkdown(v.text)}`), v.text);
    assert.ok(!md.includes("<script>"), "raw HTML from a dataset name reached the Markdown");
    assert.ok(md.includes("sun&lt;script&gt;"));
    assert.ok(md.includes("Circuit (3 heads): L0H3 (R = 0.4), L1H1 (R = 0.31), L3H0 (R = 0.27)"));
    assert.ok(md.includes("Low-relevance heads (2): L3H1 (R = −0.4), L1H2 (R = −0.22)"));
    assert.ok(md.includes("](report.html)") && md.includes("](heatmap.png)"));
    // % parameters: 3 significant digits; the 1.0 full row is 100.
    assert.match(md, /\| ctsft \| jav \| [^\n]*\| 0\.412 \| [\d.]+ \|/);
    assert.match(md, /\| full \| jav \| [^\n]*\| — \| — \| 0\.42 ± 0\.05 \| 33\.3 ± 0\.0 \| 100 \| [\d.]+ \|/);
  });

  it("report.md and report.html have the second forgetting table (proxy LM loss, the related task)", () => {
    const md = readFileSync(paths.markdown, "utf8");
    assert.match(md, /## Forgetting beyond proxy accuracy\n\n\| method \| target \| source LM loss before → after \(nats\) \| Δ LM loss vs full \(nats\) \| nli acc\. before → after \(%\) \| nli Δ forgetting vs full \(points\) \|/);
    assert.ok(md.split("\n").some((l) => l.startsWith("| full | jav | 2.500 → ") && l.endsWith("| — |")), "the full row has no paired differences");
    assert.match(readFileSync(paths.html, "utf8"), /<table id="forgetting-table">/);
  });

  it("report.md shows the warnings first and the preservation columns with their meaning", () => {
    const md = readFileSync(paths.markdown, "utf8");
    assert.ok(md.indexOf("## Warnings") < md.indexOf("## Setup"));
    assert.ok(md.includes(`- **warning:** ${escapeMarkdown(WARNING)}`));
    assert.ok(!md.includes("<b>"));
    assert.match(md, /^\| method \| target \|[^\n]*\| relevance kept θ1 → θ2 \(Spearman\) \| top\-k heads kept \(%\) \|/m);
    assert.match(md, /\| ctsft\-low \| jav \| [^\n]*\| 0\.93 ± 0\.05 \| 100\.0 ± 0\.0 \| 0\.412 \|/);
    assert.match(md, /Relevance kept: every θ2 re-scored/);
  });

  it("report.html is self-contained and escapes dataset names", () => {
    const html = readFileSync(paths.html, "utf8");
    assert.ok(!/https?:\/\//i.test(html), "external URL in the HTML");
    assert.ok(!/<script/i.test(html), "a <script> element in the HTML");
    assert.ok(!/\bsrc=|<link\b|@import|url\((?!#)/i.test(html), "an external resource reference");
    assert.ok(html.includes(escapeHtml(EVIL)));
    assert.match(html, /<table id="results">/);
    assert.match(html, /<figure class="chart heatmap" id="fig-heatmap"[^>]*><svg /);
    assert.ok(html.includes('stroke-dasharray="4,4"'), "low-relevance marks");
    assert.ok(html.includes("training loss"));
    for (const v of verdicts(data.rows)) assert.ok(html.includes(escapeHtml(v.text)));
    assert.ok(html.includes(`<ul class="warnings" id="warnings"><li><b>warning:</b> ${escapeHtml(WARNING)}</li></ul>`));
    assert.ok(html.includes(`<th scope="col">relevance kept θ1 → θ2 (Spearman)</th><th scope="col">top-k heads kept (%)</th>`));
    assert.ok(html.includes("Relevance kept θ1 → θ2 (Spearman), mean ± std"), "preservation bar chart");
  });

  it("heatmap.png is the heatmap at 2×, with the scale's end colours, the unscored grey and the circuit's black outlines", () => {
    const img = PNG.sync.read(readFileSync(paths.png));
    const svg = JSON.parse(readFileSync(join(paths.charts, "heatmap.vl.json"), "utf8"));
    assert.ok(img.width >= 2 * svg.width && img.height >= 2 * svg.height, `${img.width}x${img.height} for a ${svg.width}x${svg.height} grid`);
    const count = new Map<string, number>();
    for (let i = 0; i < img.data.length; i += 4) {
      const c = hex([img.data[i] as number, img.data[i + 1] as number, img.data[i + 2] as number]);
      count.set(c, (count.get(c) ?? 0) + 1);
    }
    const cellArea = (2 * svg.width / 4) * (2 * svg.height / 4);
    // score +0.4 = +vmax: deepest red; −0.4: deepest blue; (0,2) not scored: grey. Each fills
    // most of its cell (the printed score and the outlines take the rest).
    for (const [name, colour] of [["+vmax", hex(RDBU.at(-1) as [number, number, number])], ["−vmax", hex(RDBU[0] as [number, number, number])], ["not scored", "#d9d9d9"]] as const) {
      assert.ok((count.get(colour) ?? 0) > 0.4 * cellArea, `${name} ${colour}: ${count.get(colour) ?? 0} px of a ${cellArea} px cell`);
    }
    // Three circuit outlines, 3 px wide at 1× (6 px here), around 32+ px cells: thousands of black pixels.
    assert.ok((count.get("#000000") ?? 0) > 3 * 4 * 2 * svg.width / 4, `black: ${count.get("#000000")}`);
  });

  it("renders in headless Chromium: the DOM has the results table, the screenshot is non-trivial", { skip: chromiumSkip, timeout: 120_000 }, async () => {
    const version = await chromiumVersion();
    const dom = await renderedDom(paths.html, dir);
    const table = dom.match(/<table id="results">[\s\S]*?<\/table>/)?.[0];
    assert.ok(table, "no results table in the rendered DOM");
    for (const m of METHODS) assert.ok(table.includes(`</span>${m}</td>`), `method ${m} missing from the rendered table`);
    assert.equal((table.match(/<tr/g) ?? []).length, 1 + METHODS.length * TARGETS.length);
    assert.ok(!/<script/i.test(dom), "a script element appeared in the rendered DOM");
    assert.ok(dom.includes("sun&lt;script&gt;"));
    assert.match(dom, /<figure class="chart heatmap"/);

    const shot = join(dir, "screenshot.png");
    await screenshot(paths.html, shot, dir);
    assert.ok(existsSync(shot), "no screenshot");
    assert.ok(statSync(shot).size > 30_000, `screenshot only ${statSync(shot).size} bytes`);
    console.log(`rendered with ${version}; screenshot ${statSync(shot).size} bytes`);
  });
});
