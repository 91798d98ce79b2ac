// `ctsft adapt --config`: a NusaX language no code names (Balinese) as the target works from
// a config alone, with θ1's scoring checks and every θ2's mechanism-preservation figures in the
// output, results.json and the report; bad configs are refused with the offending field named.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { FAITHFULNESS_WARN } from "../../../src/api/scoring.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const run = promisify(execFile);

function writeConfig(dir: string, body: unknown): string {
  const file = join(dir, "adapt.json");
  writeFileSync(file, JSON.stringify(body, null, 1));
  return file;
}

describe("ctsft adapt --config", () => {
  it("refuses bad configs, naming the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-adapt-bad-"));
    const base = { model: "./m", proxy: { train: { path: "a.csv" }, valid: { path: "b.csv" }, test: { path: "c.csv" } }, targets: [{ name: "x", train: { path: "d.csv" }, test: { path: "e.csv" } }], out: "out" };
    const cases: [unknown, RegExp][] = [
      [{ ...base, targets: [] }, /targets/],
      [{ ...base, seeds: ["zero"] }, /seeds\.0/],
      [{ ...base, circuit: { topK: 2, strategy: "auto" } }, /circuit\.strategy: strategy auto .* valid/],
      [{ ...base, methods: ["full", "magic"] }, /methods\.1/],
      [{ ...base, typo: 1 }, /typo/],
      [{ ...base, preservation: "no" }, /preservation/],
      [{ ...base, targets: [{ name: "x", test: { path: "e.csv" } }] }, /targets\.0\.train/],
    ];
    for (const [body, message] of cases) {
      await assert.rejects(run(process.execPath, [BIN, "adapt", "--config", writeConfig(dir, body)]), (e: { code?: number; stderr?: string }) => e.code === 1 && message.test(e.stderr ?? ""), String(message));
    }
  });

  it("adapts to a NusaX language the code never names (ban), from the config alone", { skip: process.env.CTSFT_NUSAX_DIR ? false : "CTSFT_NUSAX_DIR is not set (.ci/run sets it)", timeout: 480_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-adapt-"));
    const nx = (lang: string, split: string) => ({ nusax: { lang, split } });
    const file = writeConfig(dir, {
      model: { family: "llama", layers: 2, heads: 4, dModel: 32, vocab: 1000 },
      proxy: { name: "ind", train: nx("ind", "train"), valid: nx("ind", "valid"), test: { ...nx("ind", "test"), limit: 150 } },
      targets: [{ name: "ban", train: { ...nx("ban", "train"), limit: 60 }, test: { ...nx("ban", "test"), limit: 150 } }],
      competence: { epochs: 2, lr: 1e-3 },
      discovery: { perClass: 10 },
      methods: ["full", "ctsft"],
      seeds: [0, 1],
      training: { epochs: 1 },
      out: "run",
    });
    const { stdout, stderr } = await run(process.execPath, [BIN, "adapt", "--config", file, "--json"], { timeout: 460_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1) as string);
    assert.deepEqual(result.methods.map((m: { name: string; target: string }) => `${m.target}/${m.name}`), ["ban/full", "ban/ctsft"]);
    const ctsft = result.methods[1];
    assert.equal(ctsft.seeds, 2);
    assert.ok(ctsft.params_fraction > 0 && ctsft.params_fraction < 0.5);
    assert.ok(typeof ctsft.forgetting_vs_full === "number");
    assert.match(result.verdicts[0].text, /^ban: /);
    for (const f of ["report.md", "report.html", "heatmap.png", "results.json", "circuit.json"]) assert.ok(existsSync(join(dir, "run", f)), f);

    // Mechanism preservation: every θ2 re-scored on the discovery set, compared with θ1.
    const inRange = (x: unknown, lo: number, hi: number) => typeof x === "number" && x >= lo && x <= hi;
    for (const m of result.methods) {
      assert.ok(inRange(m.preservation_spearman, -1, 1), `${m.name} Spearman ${m.preservation_spearman}`);
      assert.ok(inRange(m.preservation_topk, 0, 1), `${m.name} top-k ${m.preservation_topk}`);
      assert.ok(inRange(m.preservation_spearman_std, 0, 2) && inRange(m.preservation_topk_std, 0, 1));
    }
    const saved = JSON.parse(readFileSync(join(dir, "run", "results.json"), "utf8"));
    assert.equal(saved.runs.length, 4);
    for (const r of saved.runs) {
      assert.ok(inRange(r.preservation.spearman, -1, 1) && inRange(r.preservation.topKOverlap, 0, 1) && r.preservation.seconds > 0, JSON.stringify(r.preservation));
      assert.match(stderr, new RegExp(`ban seed ${r.seed} ${r.method}: .*relevance vs θ1: Spearman ${r.preservation.spearman.toFixed(2)}, top-2 overlap ${(r.preservation.topKOverlap * 100).toFixed(0)}%`));
    }
    const md = readFileSync(join(dir, "run", "report.md"), "utf8");
    const html = readFileSync(join(dir, "run", "report.html"), "utf8");
    const cell = `${ctsft.preservation_spearman.toFixed(2)} ± ${ctsft.preservation_spearman_std.toFixed(2)}`.replace(/^-/, "\u2212");
    assert.match(md, /relevance kept θ1 → θ2 \(Spearman\) \| top-k heads kept \(%\)/);
    assert.ok(md.split("\n").some((l) => l.startsWith("| ctsft | ban |") && l.includes(cell)), `report.md lacks ${cell}`);
    assert.ok(html.includes("relevance kept θ1 → θ2 (Spearman)") && html.includes(`<td class="n">${cell}</td>`));

    // θ1's faithfulness (Spearman of cdt with exact ablation) and stability, and the warning.
    assert.deepEqual(saved.warnings, result.warnings);
    assert.ok(Array.isArray(result.warnings));
    if (result.faithfulness !== null) {
      assert.ok(inRange(result.faithfulness.spearman, -1, 1), JSON.stringify(result.faithfulness));
      assert.deepEqual(saved.faithfulness, result.faithfulness);
      assert.match(stderr, /^faithfulness: Spearman /m);
      assert.ok(md.includes("| faithfulness (θ1) | Spearman "));
      const low = result.faithfulness.spearman < FAITHFULNESS_WARN;
      assert.equal(result.warnings.some((w: string) => /^cdt agrees poorly with exact mean-ablation.*may not be the mechanism.*ablation/.test(w)), low);
      if (low) assert.match(stderr, /^warning: cdt agrees poorly/m);
    }
    for (const w of result.warnings) assert.ok(md.includes("## Warnings") && html.includes(`<b>warning:</b> `) && stderr.includes(`warning: ${w}`), w);
  });
});
