// `ctsft predict` and `ctsft generate` (issue 12) as a user runs them, on a real tiny θ1 and a
// real CT-SFT delta: what they print equals the SDK's answer with the same delta, the table
// and JSON forms, and the exit codes (2 for usage errors, 1 when the work is refused).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type ModelHandle, Runtime } from "../../../src/index.ts";
import { type Adapted, buildAdapted, closeTo } from "../helpers/adapted.ts";

const BIN = join(new URL("../../..", import.meta.url).pathname, "bin/ctsft.js");

async function ctsft(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const f = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof f.code === "number" ? f.code : -1, stdout: f.stdout ?? "", stderr: f.stderr ?? "" };
  }
}

describe("ctsft predict / generate", { timeout: 300_000 }, () => {
  let rt: Runtime;
  let dir: string;
  let fx: Adapted;
  let sdk: ModelHandle;

  before(async () => {
    rt = await Runtime.start({ device: "cpu" });
    dir = mkdtempSync(join(tmpdir(), "ctsft-cli-serving-"));
    fx = await buildAdapted(rt, dir, { targets: { easy: 0.3 } });
    sdk = await rt.models.load({ source: fx.theta1 });
    await sdk.deltas.load("easy", fx.deltas.easy as string);
  });
  after(async () => {
    await rt?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("predict --text … --delta DIR --json: the SDK's predictions with that delta", async () => {
    const texts = ["good great nice", "bad awful", "fine ok"];
    const r = await ctsft("predict", "--model", fx.theta1, "--delta", fx.deltas.easy as string, "--text", ...texts, "--device", "cpu", "--json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { labels: string[]; predictions: { row: number; text: string; label: string; probs: number[]; logits: number[] }[] };
    const want = await sdk.predict(texts, { delta: "easy" });
    assert.deepEqual(out.labels, want.labels);
    out.predictions.forEach((p, i) => {
      assert.equal(p.row, i);
      assert.equal(p.text, texts[i]);
      assert.equal(p.label, want.predictions[i]?.label);
      assert.ok(closeTo(p.logits, want.predictions[i]?.logits as number[]), `${p.logits} vs ${want.predictions[i]?.logits}`);
    });
  });

  it("predict --data FILE prints a table, one row per text, each class's probability", async () => {
    const test = (fx.files.easy as Record<string, string>).test as string;
    const r = await ctsft("predict", "--model", fx.theta1, "--data", test, "--batch-size", "8", "--device", "cpu");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /│\s+#\s+│ label\s+│ negative %\s+│ neutral %\s+│ positive %\s+│/);
    const want = await sdk.predict({ path: test });
    const rows = r.stdout.split("\n").filter((l) => /^│\s+\d+ │/.test(l));
    assert.equal(rows.length, want.predictions.length);
    rows.forEach((row, i) => assert.match(row, new RegExp(`^│\\s+${i} │ ${want.predictions[i]?.label}\\s`), row));
    assert.match(r.stderr, /predict 30\/30 \(100%\)/, "progress from the batch events");
  });

  it("generate --prompt … streams the SDK's greedy text; --json gives the outputs", async () => {
    const r = await ctsft("generate", "--model", fx.theta1, "--delta", fx.theta2.easy as string, "--prompt", "good", "bad", "--max-new-tokens", "8", "--device", "cpu");
    assert.equal(r.code, 0, r.stderr);
    const want = await Promise.all(["good", "bad"].map(async (p) => (await sdk.generate(p, { maxNewTokens: 8, delta: "easy" }).finalResult()).body.outputs[0]));
    assert.equal(r.stdout, want.map((o) => `${o?.text}\n`).join(""));
    const j = await ctsft("generate", "--model", fx.theta1, "--prompt", "good", "--max-new-tokens", "5", "--temperature", "1", "--seed", "3", "--device", "cpu", "--json");
    assert.equal(j.code, 0, j.stderr);
    const outs = JSON.parse(j.stdout) as { prompt: string; text: string; tokens: number; finishReason: string }[];
    assert.equal(outs.length, 1);
    assert.equal(outs[0]?.prompt, "good");
    const sampled = (await sdk.generate("good", { maxNewTokens: 5, temperature: 1, seed: 3 }).finalResult()).body.outputs[0];
    assert.deepEqual({ text: outs[0]?.text, tokens: outs[0]?.tokens, finishReason: outs[0]?.finishReason }, sampled);
  });

  it("usage errors exit 2; refused work (a delta of another base, maxNewTokens 0) exits 1", async () => {
    const noInput = await ctsft("predict", "--model", fx.theta1);
    assert.equal(noInput.code, 2, noInput.stderr);
    assert.match(noInput.stderr, /give --text T\.\.\.,? .*--data FILE/);
    const both = await ctsft("predict", "--model", fx.theta1, "--text", "a", "--data", "x.csv");
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /'--text <T\.\.\.>' cannot be used with option '--data/);
    const noPrompt = await ctsft("generate", "--model", fx.theta1);
    assert.equal(noPrompt.code, 2);
    assert.match(noPrompt.stderr, /required option '--prompt <P\.\.\.>' not specified/);
    const badNumber = await ctsft("generate", "--model", fx.theta1, "--prompt", "a", "--max-new-tokens", "2.5");
    assert.equal(badNumber.code, 2);

    const otherBase = await ctsft("predict", "--model", fx.theta0, "--delta", fx.deltas.easy as string, "--text", "good", "--labels", "negative", "neutral", "positive", "--device", "cpu");
    assert.equal(otherBase.code, 1, otherBase.stderr);
    assert.match(otherBase.stderr, /^ctsft: BadRequestError \(bad_request\): /m);
    const zero = await ctsft("generate", "--model", fx.theta1, "--prompt", "a", "--max-new-tokens", "0", "--device", "cpu");
    assert.equal(zero.code, 1, zero.stderr);
    assert.match(zero.stderr, /maxNewTokens/);
  });
});
