// compareMethods refuses, before any work, a plan whose runs would collide (a seed, method,
// target or related task given twice: runs and paired differences are keyed by them) or that
// would train on fewer rows than a curve's size says (the training set's own `limit` counts).
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BadRequestError, type CompareOptions, compareMethods, Runtime } from "../../../src/index.ts";

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
  });
});
