// The CLI path a user takes on real data: new-model -> train -> evaluate on NusaX-Senti ind.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const NUSAX = process.env.CTSFT_NUSAX_DIR;
const run = async (...args: string[]) => (await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 300_000 })).stdout;
const lastJson = (out: string) => JSON.parse(out.trim().split("\n").at(-1) as string);

describe("ctsft new-model / train / evaluate on NusaX ind", { skip: NUSAX ? false : "CTSFT_NUSAX_DIR is not set (.ci/run sets it)" }, () => {
  it("a tiny Llama trained from scratch beats 60% on ind test (majority class: 38%)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-nusax-"));
    const corpus = ["ind", "jav", "sun"].flatMap((l) => ["--corpus", join(NUSAX as string, l, "train.csv")]);
    const made = lastJson(await run("new-model", "--family", "llama", "--layers", "2", "--heads", "4", "--d-model", "64", "--vocab", "2000", ...corpus, "--out", join(dir, "base"), "--json"));
    assert.equal(made.family, "llama");
    const trained = lastJson(
      await run("train", "--model", join(dir, "base"), "--data", join(NUSAX as string, "ind", "train.csv"), "--epochs", "3", "--lr", "1e-3", "--out", join(dir, "ind"), "--json"),
    );
    assert.equal(trained.params_fraction, 1);
    assert.equal(trained.params_trainable, made.params);
    const test = join(NUSAX as string, "ind", "test.csv");
    const rows = lastJson(await run("evaluate", "--model", join(dir, "ind"), "--data", test, "--data", "nusax:jav:test", "--json"));
    assert.deepEqual(Object.keys(rows[0]).sort(), ["accuracy", "dataset", "macro_f1", "n"]);
    assert.equal(rows[0].dataset, test);
    assert.equal(rows[0].n, 400);
    assert.ok(rows[0].accuracy >= 0.6, `ind test accuracy ${rows[0].accuracy}`);
    process.stderr.write(`nusax ind: test accuracy ${rows[0].accuracy}, jav ${rows[1].accuracy}, train ${trained.seconds.toFixed(1)} s\n`);
  });
});
