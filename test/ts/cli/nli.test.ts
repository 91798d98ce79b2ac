// The CLI path for a pair-input task on real data: new-model -> train (IndoNLI, e/n/c mapped
// to names) -> evaluate (IndoNLI and AmericasNLI aym, fields and template from ctsft.json) ->
// score -> predict records. (The typed errors naming a field are checked through the SDK in
// test/ts/api/nli.test.ts; the CLI prints any SDK error alike, see cli.test.ts.)
// The training and validation subsets are the files' first rows, written to a temp folder.
// Last, the NLI demo end to end: `ctsft demo --task nli --data DIR` with one seed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const INDONLI = process.env.CTSFT_INDONLI_DIR;
const AMERICASNLI = process.env.CTSFT_AMERICASNLI_DIR;
const run = async (...args: string[]) => (await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 300_000 })).stdout;
/** The demo's run: a whole study (θ0, θ1, 2 targets × 6 methods), so a longer limit. */
const DEMO_TIMEOUT = 900_000;
const lastJson = (out: string) => JSON.parse(out.trim().split("\n").at(-1) as string);
const LABELS = ["contradiction", "entailment", "neutral"];
const TASK = ["--fields", "premise,hypothesis", "--label-map", "e=entailment,n=neutral,c=contradiction"];

/** The first `n` rows of an IndoNLI split, as a JSONL file in `dir`. */
function head(dir: string, split: string, n: number): string {
  const out = join(dir, `${split}-${n}.jsonl`);
  const lines = readFileSync(join(INDONLI as string, `${split}.jsonl`), "utf8").split("\n").slice(0, n);
  writeFileSync(out, `${lines.join("\n")}\n`);
  return out;
}

describe("ctsft on a pair-input task (IndoNLI → AmericasNLI)", { skip: INDONLI && AMERICASNLI ? false : "CTSFT_INDONLI_DIR / CTSFT_AMERICASNLI_DIR are not set (.ci/run sets them)" }, () => {
  it("new-model, train, evaluate, score and predict with --template, --fields and --label-map", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-cli-nli-"));
    const [train, valid] = [head(dir, "train", 200), head(dir, "valid", 60)];
    const aym = join(AMERICASNLI as string, "aym", "dev.tsv");
    const made = lastJson(
      await run("new-model", "--family", "llama", "--layers", "2", "--heads", "4", "--d-model", "32", "--vocab", "800", "--corpus", train, aym, "--fields", "premise,hypothesis", "--out", join(dir, "base"), "--json"),
    );
    // `\n` as the shell passes it (two characters) stands for a newline.
    const template = String.raw`{premise}\nQuestion: {hypothesis}\nAnswer:`;
    const trained = lastJson(
      await run("train", "--model", made.path, "--data", train, "--valid", valid, ...TASK, "--template", template, "--epochs", "1", "--lr", "3e-3", "--max-length", "96", "--out", join(dir, "nli"), "--json"),
    );
    assert.ok(Number.isFinite(trained.train_loss) && trained.valid_accuracy >= 0);
    const task = JSON.parse(readFileSync(join(dir, "nli", "ctsft.json"), "utf8"));
    assert.equal(task.template, "{premise}\nQuestion: {hypothesis}\nAnswer:");
    assert.deepEqual(task.fields, { premise: "premise", hypothesis: "hypothesis" });
    assert.deepEqual(task.label_names, LABELS);

    // Fields and template come from ctsft.json; the label map turns IndoNLI's e/n/c into names and leaves AmericasNLI's as they are.
    const rows = lastJson(await run("evaluate", "--model", join(dir, "nli"), "--data", valid, aym, "--label-map", "e=entailment,n=neutral,c=contradiction", "--json"));
    assert.deepEqual(
      rows.map((r: { dataset: string; n: number }) => [r.dataset, r.n]),
      [
        [valid, 60],
        [aym, 743],
      ],
    );

    const scores = lastJson(
      await run("score", "--model", join(dir, "nli"), "--data", valid, "--label-map", "e=entailment,n=neutral,c=contradiction", "--per-class", "4", "--method", "attribution", "--faithfulness", "off", "--out", join(dir, "scores.json"), "--json"),
    );
    assert.equal(scores.n, 12);
    assert.equal(scores.scores.flat().length, 8);

    const record = JSON.stringify({ premise: "Presiden menyampaikan prediksi bahwa wabah akan selesai akhir tahun ini.", hypothesis: "Prediksi itu tidak disampaikan." });
    const predicted = lastJson(await run("predict", "--model", join(dir, "nli"), "--record", record, record, "--json"));
    assert.deepEqual(predicted.labels, LABELS);
    assert.equal(predicted.predictions.length, 2);
    assert.deepEqual(predicted.predictions[0].probs, predicted.predictions[1].probs);
    assert.ok(LABELS.includes(predicted.predictions[0].label));
    process.stderr.write(`cli nli: IndoNLI valid accuracy ${rows[0].accuracy}, aym dev ${rows[1].accuracy} (chance ~0.33; 200 training pairs, tiny model)\n`);
  });

  it("malformed --fields and --label-map are usage errors (exit 2) naming the flag", async () => {
    for (const [flag, value] of [
      ["--fields", "premise="],
      ["--label-map", "e"],
    ] as const) {
      await assert.rejects(run("train", "--model", "m", "--data", "d.jsonl", flag, value, "--out", "o"), (e: { code?: number; stderr?: string }) => {
        assert.equal(e.code, 2);
        assert.match(e.stderr ?? "", new RegExp(`${flag} takes`));
        return true;
      });
    }
  });
  it("demo --task nli --data DIR: the whole study on IndoNLI → AmericasNLI aym, gn, with a report", { timeout: DEMO_TIMEOUT }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ctsft-cli-nli-demo-")), "demo");
    const started = performance.now();
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, "demo", "--task", "nli", "--data", dirname(INDONLI as string), "--seeds", "1", "--out", out, "--json"], {
      timeout: DEMO_TIMEOUT,
      maxBuffer: 64 << 20,
    });
    const result = lastJson(stdout);
    assert.equal(result.out, out);
    for (const f of ["report.html", "report.md", "results.json"]) assert.ok(existsSync(join(out, f)), f);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    const methods = ["full", "ctsft", "ctsft-low", "random", "norms", "lora"];
    for (const target of ["aym", "gn"]) {
      const rows = results.methods.filter((r: { target: string }) => r.target === target);
      assert.deepEqual(rows.map((r: { name: string }) => r.name).sort(), [...methods].sort(), target);
      for (const r of rows) assert.ok(r.target_acc >= 0 && r.target_acc <= 1 && Number.isFinite(r.forgetting), `${target} ${r.name}`);
    }
    const task = JSON.parse(readFileSync(join(out, "theta1", "ctsft.json"), "utf8"));
    assert.deepEqual(task.fields, { premise: "premise", hypothesis: "hypothesis" });
    assert.deepEqual(task.label_names, LABELS);
    assert.equal(task.template, "{premise}\nQuestion: {hypothesis}\nAnswer:");
    const s = (performance.now() - started) / 1000;
    process.stderr.write(`cli nli demo: ${s.toFixed(0)} s; θ1 IndoNLI source accuracy ${results.sourceAccBefore} (chance ~0.33)\n`);
  });

  it("demo --task nli without --data is a usage error (exit 2) naming --data", async () => {
    await assert.rejects(run("demo", "--task", "nli", "--seeds", "1"), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? "", /--task nli needs --data DIR/);
      return true;
    });
    // A folder without AmericasNLI: refused before any work, naming --data and each missing file.
    const empty = mkdtempSync(join(tmpdir(), "ctsft-cli-nli-nodata-"));
    await assert.rejects(run("demo", "--task", "nli", "--data", empty, "--seeds", "1"), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? "", /--data .* is not an NLI data folder: missing .*indonli\/train\.jsonl.*americasnli\/gn\/test\.tsv/);
      return true;
    });
  });
});
