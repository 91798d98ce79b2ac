// `ctsft adapt` with `targetSizes`: every method trained on nested subsets of the target set,
// the data-efficiency curves in results.json, report.md (tables and PNGs) and report.html
// (rendered in headless Chromium); a size larger than a target's training set is refused
// before any work, naming `targetSizes`. The same run measures forgetting beyond proxy
// accuracy: the proxy LM loss and a related task that θ1 was tuned on first, a pair-input
// task with other labels and fields (do two texts of another synthetic language share a
// sentiment?), as IndoNLI beside NusaX sentiment in examples/related-task.yaml.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { PNG } from "pngjs";
import { Runtime } from "../../../src/index.ts";
import { chromiumSkip, renderedDom } from "../helpers/chromium.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const run = promisify(execFile);
const SIZES = [20, 40];

describe("ctsft adapt with targetSizes (data-efficiency curves)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ctsft-curves-"));
  const config = async (over: Record<string, unknown> = {}) => {
    const files = await (async () => {
      await using rt = await Runtime.start();
      return (await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0, near: 0.3, rel: 0.1 }, nTrain: 120, nValid: 48, nTest: 90 })).files;
    })();
    const f = (lang: string, split: string) => ({ path: (files[lang] as Record<string, string>)[split] as string });
    // Consecutive rows of a split as pairs labelled same/different (the synthetic CSVs: id,text,label, no quotes).
    const pairs = (lang: string, split: string) => {
      const rows = readFileSync(f(lang, split).path, "utf8").trim().split("\n").slice(1).map((line) => ({ text: line.split(",").slice(1, -1).join(","), label: line.split(",").at(-1) }));
      const path = join(dir, `pairs-${lang}-${split}.jsonl`);
      writeFileSync(path, rows.slice(1).map((r, i) => `${JSON.stringify({ a: rows[i]?.text, b: r.text, label: rows[i]?.label === r.label ? "same" : "different" })}\n`).join(""));
      return { path, fields: { a: "a", b: "b" } };
    };
    const file = join(dir, `adapt-${Object.keys(over).join("-") || "curves"}.json`);
    const body = {
      model: { family: "llama", layers: 2, heads: 4, dModel: 32, vocab: 600 },
      proxy: { name: "src", train: f("src", "train"), valid: f("src", "valid"), test: f("src", "test") },
      targets: [{ name: "near", train: { ...f("near", "train"), limit: 40 }, test: f("near", "test") }],
      template: "{text}\nSentiment:",
      related: [{ name: "rel", train: pairs("rel", "train"), valid: pairs("rel", "valid"), test: pairs("rel", "test"), template: "{a}\nAnd: {b}\nSame:" }],
      competence: { epochs: 2, lr: 3e-3 },
      scorer: "attribution",
      discovery: { perClass: 8 },
      methods: ["full", "ctsft"],
      seeds: [0, 1],
      training: { epochs: 1 },
      preservation: false,
      targetSizes: SIZES,
      out: join(dir, "run"),
      ...over,
    };
    writeFileSync(file, JSON.stringify(body));
    return file;
  };

  it("refuses a size larger than a target's training set, or a seed given twice, before any work, naming the field", async () => {
    const file = await config({ targetSizes: [20, 41], out: join(dir, "refused") });
    const err = await run(process.execPath, [BIN, "adapt", "--config", file], { timeout: 120_000 }).then(
      () => assert.fail("adapt accepted targetSizes past the training set"),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(err.stderr, /targetSizes asks for 41 examples, but targets\.0\.train has 40/);
    assert.ok(!existsSync(join(dir, "refused", "theta0")), "work started before the refusal");
    // A repeated seed would pair runs with their own twins (no seed noise, false verdicts).
    const twice = await run(process.execPath, [BIN, "adapt", "--config", await config({ seeds: [1, 1], out: join(dir, "refused-seeds") })], { timeout: 120_000 }).then(
      () => assert.fail("adapt accepted a seed given twice"),
      (e: { code: number; stderr: string }) => e,
    );
    assert.match(twice.stderr, /seeds names 1 twice/);
    assert.ok(!existsSync(join(dir, "refused-seeds", "theta0")), "work started before the refusal");
  });

  it("writes the curves into results.json, report.md (with PNGs) and report.html, rendered in Chromium", { timeout: 400_000 }, async () => {
    const { stdout } = await run(process.execPath, [BIN, "adapt", "--config", await config(), "--json"], { timeout: 380_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1) as string);
    const out = join(dir, "run");
    // One row per method and size, each size's ctsft paired with full on the same seeds.
    assert.deepEqual(
      result.methods.map((r: { name: string; target_size: number }) => `${r.name}@${r.target_size}`),
      SIZES.flatMap((n) => [`full@${n}`, `ctsft@${n}`]),
    );
    for (const r of result.methods.filter((m: { name: string }) => m.name === "ctsft")) {
      assert.equal(r.seeds, 2);
      assert.ok(Number.isFinite(r.forgetting_vs_full) && Number.isFinite(r.target_vs_full), JSON.stringify(r));
    }
    assert.deepEqual(
      result.curves.map((c: { target: string; method: string; points: { target_size: number }[] }) => [c.target, c.method, c.points.map((p) => p.target_size)]),
      [
        ["near", "full", SIZES],
        ["near", "ctsft", SIZES],
      ],
    );
    assert.deepEqual(result.verdicts.map((v: { size: number }) => v.size), SIZES);
    const saved = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.deepEqual(saved.curves, result.curves);
    assert.deepEqual(saved.runs.map((r: { size: number }) => r.size).sort(), [20, 20, 20, 20, 40, 40, 40, 40]);
    // The runs trained on what they say: losses per epoch scale with the subset (batch 16).
    const steps = (n: number) => saved.runs.find((r: { size: number; method: string }) => r.size === n && r.method === "full").losses.length;
    assert.deepEqual([steps(20), steps(40)], [Math.ceil(20 / 16), Math.ceil(40 / 16)]);

    const md = readFileSync(join(out, "report.md"), "utf8");
    assert.match(md, /## Data-efficiency curves\n\n### near\n\n\| target examples \| full \| ctsft \|/);
    for (const n of SIZES) assert.ok(md.split("\n").some((l) => l.startsWith(`| ${n} | `)), `report.md lacks the row for ${n} examples`);
    for (const kind of ["accuracy", "forgetting", "vs-full"]) {
      const png = join(out, "charts", `curve-0-${kind}.png`);
      assert.ok(md.includes(`(charts/curve-0-${kind}.png)`), `report.md does not show ${kind}`);
      const image = PNG.sync.read(readFileSync(png));
      assert.ok(image.width > 300 && image.height > 200, `${png}: ${image.width}×${image.height}`);
      assert.ok(existsSync(join(out, "charts", `curve-0-${kind}.vl.json`)));
    }
    const marker = JSON.parse(readFileSync(join(out, "ctsft-artifact.json"), "utf8"));
    assert.ok(marker.files.includes("charts"));

    // Forgetting beyond proxy accuracy: θ1's LM loss and related accuracy, every row's after.
    assert.ok(result.sourceLmLossBefore > 0 && Number.isFinite(result.relatedAccBefore.rel), JSON.stringify([result.sourceLmLossBefore, result.relatedAccBefore]));
    for (const r of result.methods) {
      assert.equal(r.lm_loss_before, result.sourceLmLossBefore);
      assert.ok(r.lm_loss_after > 0 && r.related.length === 1 && r.related[0].name === "rel" && r.related[0].acc_before === result.relatedAccBefore.rel, JSON.stringify(r));
      assert.equal(r.name === "ctsft", Number.isFinite(r.lm_loss_vs_full) && Number.isFinite(r.related[0].forgetting_vs_full));
    }
    for (const run of saved.runs) assert.ok(run.sourceLmLossAfter > 0 && Number.isFinite(run.relatedAccAfter.rel));
    assert.match(md, /## Forgetting beyond proxy accuracy\n\n\| method \| target \| source LM loss before → after \(nats\) \| Δ LM loss vs full \(nats\) \| rel acc\. before → after \(%\) \| rel Δ forgetting vs full \(points\) \|/);
    assert.ok(md.includes("| related task rel: accuracy θ1 | "));

    if (chromiumSkip) return console.log(`Chromium part skipped: ${chromiumSkip}`);
    const dom = await renderedDom(join(out, "report.html"), dir);
    assert.match(dom, /<h2 id="curves">Data-efficiency curves<\/h2>/);
    for (const kind of ["accuracy", "forgetting", "vs-full"]) assert.match(dom, new RegExp(`<figure class="chart " id="fig-curve-0-${kind}"[^>]*><svg`));
    assert.match(dom, /<table class="curve">/);
    assert.match(dom, /<table id="forgetting-table">/);
    assert.ok(!/<script/i.test(dom));
  });
});
