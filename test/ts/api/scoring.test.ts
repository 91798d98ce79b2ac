// Mechanism discovery through the SDK against a real runtime: baseline, every scorer,
// score tensors and files, circuit selection, and the typed errors of bad input.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { BadRequestError, Circuit, type ModelHandle, NotFoundError, rankHeads, Runtime, scoreDiagnostics, ScoresFile, spearman } from "../../../src/index.ts";
import { tinySetup } from "../../../bench/fixture.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;

describe("head relevance and circuits", () => {
  let rt: Runtime;
  let dir: string;
  let files: Record<string, Record<string, string>>;
  let model: ModelHandle;
  let valid: { path: string };

  before(async () => {
    rt = await Runtime.start();
    ({ dir, files, model } = await tinySetup(rt, { layers: 2, heads: 4, dModel: 32, nTrain: 150 }));
    valid = { path: (files.src as Record<string, string>).valid as string };
  });
  after(async () => {
    await rt?.close();
  });

  it("scores every head with every method, as tensors and as a file", async () => {
    const base = await rt.scoring.baseline({ model, data: valid }).finalResult();
    assert.deepEqual(base.tensors.mean?.shape, [2, 4, model.info.headDim]);
    for (const method of ["ablation", "attribution", "cdt", "cdt-unsigned"] as const) {
      const out = join(dir, `${method}.json`);
      const stream = rt.scoring.score({ model, data: valid, method, baseline: base.body.handle, out });
      let progress = 0;
      for await (const e of stream) if (e.phase === "scoring") progress = e.done;
      const { body, tensors } = await stream.result;
      assert.equal(progress, method === "ablation" ? 96 * 8 : 96);
      assert.deepEqual(tensors.scores?.shape, [2, 4]);
      assert.deepEqual(tensors.perClass?.shape, [3, 2, 4]);
      assert.ok(Array.from(tensors.scores?.data as Float32Array).every(Number.isFinite), method);
      const file = ScoresFile.parse(JSON.parse(readFileSync(out, "utf8")));
      assert.equal(file.method, method);
      assert.deepEqual(file.scores, body.scores);
      assert.equal(rankHeads(tensors.scores as never).length, 8);
      // Every run says how far it can be trusted: cdt its stability, every scorer but
      // ablation itself its agreement with mean-ablation on a balanced subsample.
      if (method.startsWith("cdt")) {
        assert.ok(file.stability && file.stability.maxRatio > 0 && file.stability.maxRatio <= file.stability.threshold, JSON.stringify(file.stability));
        assert.equal(file.stability.warning, null);
        assert.equal(file.stability.layer >= 0 && file.stability.layer < 2, true);
      } else {
        assert.equal(file.stability, null);
      }
      if (method === "ablation") {
        assert.equal(file.faithfulness, null);
      } else {
        assert.equal(file.faithfulness?.examples, 63); // 21 per class of 96 (32 per class), the default 64
        assert.equal(file.faithfulness?.heads, 8);
        const rho = file.faithfulness?.spearman as number;
        assert.ok(rho >= -1 && rho <= 1, String(rho));
        assert.ok(scoreDiagnostics(file).some((l) => l.startsWith("faithfulness: Spearman")));
      }
    }
    // attribution on the whole set, checked against ablation on the whole set: the figure is
    // the Spearman of the two score grids computed separately.
    const all = { examples: 1000 };
    const attr = (await rt.scoring.score({ model, data: valid, method: "attribution", baseline: base.body.handle, faithfulness: all }).finalResult()).body;
    const abl = (await rt.scoring.score({ model, data: valid, method: "ablation", baseline: base.body.handle }).finalResult()).body;
    assert.equal(attr.faithfulness?.examples, 96);
    assert.ok(Math.abs((attr.faithfulness?.spearman as number) - (spearman(attr.scores.flat() as number[], abl.scores.flat() as number[]) as number)) < 1e-9);
    const off = await rt.scoring.score({ model, data: valid, method: "cdt", baseline: base.body.handle, faithfulness: false }).finalResult();
    assert.equal(off.body.faithfulness, null);
    await assert.rejects(async () => rt.scoring.score({ model, data: valid, faithfulness: { examples: 1 } }).finalResult(), (e) => e instanceof BadRequestError && /faithfulness/.test(String(e.path)));
  });

  it("scores a subset of heads; the rest are null", async () => {
    const { body } = await rt.scoring.score({ model, data: valid, method: "ablation", heads: [[1, 2]] }).finalResult();
    assert.equal(body.scores.flat().filter((x) => x !== null).length, 1);
    assert.equal(rankHeads(body.scores)[0]?.head, 2);
  });

  it("selects circuits by rule and strategy, from the CLI too", async () => {
    const scores = join(dir, "cdt.json");
    const top = await rt.circuits.select({ scores, topK: 2, out: join(dir, "c.json") });
    assert.equal(top.heads.length, 2);
    const ranked = rankHeads(top.scores).slice(0, 2).map((h) => [h.layer, h.head]);
    assert.deepEqual([...top.heads].sort(), ranked.sort());
    assert.ok(top.params.fraction > 0 && top.params.fraction < 1);
    const low = await rt.circuits.select({ scores, strategy: "low", budget: top.params.fraction });
    assert.ok(low.params.fraction <= top.params.fraction + 1e-12);
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, "circuit", "--scores", scores, "--top-k", "3", "--strategy", "random", "--seed", "4", "--out", join(dir, "r.json"), "--json"]);
    const c = Circuit.parse(JSON.parse(stdout.trim().split("\n").at(-1) as string));
    assert.equal(c.heads.length, 3);
    assert.deepEqual(Circuit.parse(JSON.parse(readFileSync(join(dir, "r.json"), "utf8"))).heads, c.heads);
  });

  it("answers bad input with typed errors", async () => {
    const scores = join(dir, "cdt.json");
    const skewed = join(dir, "skewed.csv");
    writeFileSync(skewed, `text,label\n${"it was bad,negative\n".repeat(10)}it was fine,neutral\nit was good,positive\n`);
    const other = await rt.models.load({ source: model.info.source });
    const otherBase = await rt.scoring.baseline({ model: other, data: valid }).finalResult();
    const cases: [string, () => Promise<unknown>, (e: unknown) => boolean][] = [
      ["one-class set", () => rt.scoring.score({ model, data: { ...valid, labels: ["negative", "neutral", "positive"], limit: 1 } }).finalResult(), (e) => e instanceof BadRequestError && /class/.test(e.message)],
      ["unbalanced set", () => rt.scoring.score({ model, data: { path: skewed } }).finalResult(), (e) => e instanceof BadRequestError && /unbalanced/.test(e.message)],
      ["baseline of another model", () => rt.scoring.score({ model, data: valid, baseline: otherBase.body.handle }).finalResult(), (e) => e instanceof BadRequestError && e.path === "body.baseline"],
      ["unknown baseline", () => rt.scoring.score({ model, data: valid, baseline: "b999" }).finalResult(), (e) => e instanceof NotFoundError],
      ["head out of range", () => rt.scoring.score({ model, data: valid, heads: [[0, 9]] }).finalResult(), (e) => e instanceof BadRequestError],
      ["k larger than head count", () => rt.circuits.select({ scores, topK: 9 }), (e) => e instanceof BadRequestError && e.path === "body.topK"],
      ["two rules", () => rt.circuits.select({ scores, topK: 2, budget: 0.5 }), (e) => e instanceof BadRequestError],
      ["not a scores file", () => rt.circuits.select({ scores: valid.path, topK: 2 }), (e) => e instanceof BadRequestError && /JSON/.test(e.message)],
    ];
    for (const [name, run, check] of cases) await assert.rejects(run(), check, name);
    await rt.ping();
  });
});
