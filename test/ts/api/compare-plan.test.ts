// compareMethods refuses, before any work, a plan whose runs would collide (a seed, method,
// target or related task given twice: runs and paired differences are keyed by them) or that
// would train on fewer rows than a curve's size says (the training set's own `limit` counts);
// and when the scorer's faithfulness check on θ1 is below `ablationBelow`, exact ablation
// chooses the circuits.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BadRequestError, type CompareOptions, compareMethods, rankHeads, Runtime } from "../../../src/index.ts";

describe("compareMethods plan checks", () => {
  const dir = mkdtempSync(join(tmpdir(), "ctsft-plan-"));
  let rt: Runtime;
  let base: CompareOptions;
  before(async () => {
    rt = await Runtime.start();
    const files = (await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0, near: 0.3 }, nTrain: 60, nValid: 24, nTest: 24 })).files;
    const f = (lang: string, split: string) => ({ path: (files[lang] as Record<string, string>)[split] as string });
    // θ1 does not exist: a refusal must come before it is loaded.
    base = { model: join(dir, "no-model"), discovery: f("src", "valid"), sourceTest: f("src", "test"), targets: [{ name: "near", train: f("near", "train"), test: f("near", "test") }], methods: ["full", "ctsft"], seeds: [0, 1], workDir: join(dir, "work") };
  });
  after(() => rt.close());

  const refused = (path: string, pattern: RegExp) => (e: unknown) => e instanceof BadRequestError && e.path === path && pattern.test(e.message);

  it("a seed, method, target or related task given twice", async () => {
    await assert.rejects(compareMethods(rt, { ...base, seeds: [1, 1] }), refused("seeds", /names 1 twice/));
    await assert.rejects(compareMethods(rt, { ...base, methods: ["full", "ctsft", "full"] }), refused("methods", /names "full" twice/));
    const t = base.targets[0]!;
    await assert.rejects(compareMethods(rt, { ...base, targets: [t, t] }), refused("targets", /names "near" twice/));
    const related = { name: "r", test: base.sourceTest };
    await assert.rejects(compareMethods(rt, { ...base, related: [related, related] }), refused("related", /names "r" twice/));
  });

  it("a size past the training set, whether the file or its limit ends it", async () => {
    await assert.rejects(compareMethods(rt, { ...base, targetSizes: [20, 61] }), refused("targetSizes", /asks for 61 examples, but targets\.0\.train has 60/));
    const t = base.targets[0]!;
    const limited = { ...t, train: { ...(t.train as { path: string }), limit: 30 } };
    await assert.rejects(compareMethods(rt, { ...base, targets: [limited], targetSizes: [40] }), refused("targetSizes", /asks for 40 examples, but targets\.0\.train has 30/));
    // Twice, or on a set that has no "first N rows": a perClass draw.
    await assert.rejects(compareMethods(rt, { ...base, targetSizes: [20, 20] }), refused("targetSizes", /names 20 twice/));
    const drawn = { ...t, train: { ...(t.train as { path: string }), perClass: 10 } };
    await assert.rejects(compareMethods(rt, { ...base, targets: [drawn], targetSizes: [10] }), refused("targets.0.train", /a perClass draw/));
  });

  it("a scorer below ablationBelow on θ1: exact ablation chooses the circuits, and a warning says so", { timeout: 180_000 }, async () => {
    const files = (await rt.data.synthetic({ out: join(dir, "data2"), languages: { src: 0, near: 0.3 }, nTrain: 90, nValid: 48, nTest: 24 })).files;
    const f = (lang: string, split: string) => ({ path: (files[lang] as Record<string, string>)[split] as string });
    const created = await rt.models.create({ family: "llama", layers: 2, heads: 2, dModel: 32, vocab: 400, corpus: [f("src", "train").path, f("near", "train").path], out: join(dir, "theta") });
    const theta = await rt.models.load({ source: created.path });
    await rt.train({ model: theta, data: f("src", "train"), epochs: 2, lr: 3e-3 }).finalResult();
    await theta.save(join(dir, "theta1"));
    await theta.release();
    const plan: CompareOptions = { ...base, model: join(dir, "theta1"), discovery: f("src", "valid"), sourceTest: f("src", "test"), targets: [{ name: "near", train: f("near", "train"), test: f("near", "test") }], methods: ["ctsft"], seeds: [0], epochs: 1, lmLoss: false, scorer: "attribution", workDir: join(dir, "work-fallback") };
    // attribution is a first-order view: on a trained model it never agrees with ablation exactly.
    const r = await compareMethods(rt, { ...plan, ablationBelow: 1 });
    assert.ok(r.faithfulness !== null && (r.faithfulness.spearman as number) < 1, JSON.stringify(r.faithfulness));
    assert.equal(r.scorer, "ablation");
    assert.equal(r.fallbackFrom, "attribution");
    assert.ok(r.warnings.some((w) => /attribution's faithfulness on θ1 .* is below 1: the circuits are chosen from exact mean-ablation/.test(w)), r.warnings.join("\n"));
    // The circuit is exact ablation's own top 2 (scored apart here on the same discovery set).
    const model = await rt.models.load({ source: join(dir, "theta1") });
    const ablation = (await rt.scoring.score({ model, data: f("src", "valid"), method: "ablation" }).finalResult()).body;
    await model.release();
    assert.deepEqual(r.scores, ablation.scores);
    assert.deepEqual(r.circuit, rankHeads(ablation.scores).slice(0, 2).map((h) => [h.layer, h.head]));
    // null: the scorer's own circuit, whatever the check says.
    const kept = await compareMethods(rt, { ...plan, ablationBelow: null, workDir: join(dir, "work-kept") });
    assert.equal(kept.scorer, "attribution");
    assert.equal(kept.fallbackFrom, null);
  });
});
