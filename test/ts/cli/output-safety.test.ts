// The CLI's outputs never destroy what ctsft did not write (issue 10): `train --out`,
// `delta --out` and `adapt`'s `out` refuse a folder holding someone's files (before any
// training), `--out .` is refused even with --overwrite, adapt checks every path and
// language of its config before it starts, and re-running adapt into its own output works.
// Real CLI processes, real runtimes, a real tiny checkpoint built by the runtime.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Runtime } from "../../../src/index.ts";
import { precious, snapshot } from "../helpers/folders.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const run = promisify(execFile);

type Failure = { code?: number; stdout?: string; stderr?: string };

/** Run `ctsft ARGS`; it must fail with a BadRequestError whose message matches `message`. */
async function refused(args: string[], message: RegExp, cwd?: string): Promise<string> {
  let stderr = "";
  await assert.rejects(run(process.execPath, [BIN, ...args], { cwd, timeout: 120_000 }), (e: Failure) => {
    stderr = e.stderr ?? "";
    assert.equal(e.code, 1, stderr);
    assert.match(stderr, /BadRequestError \(bad_request\)/, stderr);
    assert.match(stderr, message, stderr);
    assert.doesNotMatch(stderr, /EEXIST|\n\s+at /, "a typed error, no raw stack");
    return true;
  });
  return stderr;
}

describe("CLI outputs", { timeout: 600_000 }, () => {
  let dir: string;
  let model: string;
  let data: string;
  let files: Record<string, Record<string, string>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ctsft-cli-outsafe-"));
    await using rt = await Runtime.start({ device: "cpu" });
    const synth = await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0, easy: 0.2 }, nTrain: 36, nValid: 12, nTest: 24 });
    files = synth.files;
    data = synth.dir;
    model = (await rt.models.create({ family: "llama", layers: 1, heads: 2, dModel: 16, vocab: 300, corpus: [files.src?.train as string, files.easy?.train as string], out: join(dir, "theta0") })).path;
  });

  const trainArgs = (out: string, ...more: string[]) => ["train", "--model", model, "--data", files.src?.train as string, "--epochs", "1", "--batch-size", "12", "--device", "cpu", "--out", out, ...more];

  it("train --out refuses a folder ctsft did not write, before training, and leaves it alone", async () => {
    const folder = join(dir, "precious-train");
    const before = precious(folder);
    const stderr = await refused(trainArgs(folder), /out .*precious-train.*thesis\.txt.*--overwrite/s);
    assert.doesNotMatch(stderr, /trained \d+ parameters/, "refused before training");
    assert.deepEqual(snapshot(folder), before);
  });

  it("train --out . is refused in a project folder, even with --overwrite", async () => {
    const project = join(dir, "project");
    precious(project);
    writeFileSync(join(project, "train.csv"), readFileSync(files.src?.train as string));
    const before = snapshot(project);
    for (const extra of [[], ["--overwrite"]]) await refused(trainArgs(".", ...extra), /working directory/, project);
    assert.deepEqual(snapshot(project), before);
  });

  it("train writes a marked checkpoint, and delta --out refuses someone's folder", async () => {
    const theta2 = join(dir, "theta2");
    await run(process.execPath, [BIN, ...trainArgs(theta2, "--method", "ctsft", "--heads", "0:0")], { timeout: 120_000 });
    assert.equal(JSON.parse(readFileSync(join(theta2, "ctsft-artifact.json"), "utf8")).kind, "checkpoint");
    assert.equal(JSON.parse(readFileSync(join(theta2, "ctsft-delta", "ctsft-artifact.json"), "utf8")).kind, "delta");
    await run(process.execPath, [BIN, ...trainArgs(theta2)], { timeout: 120_000 }); // its own output again: fine
    const folder = join(dir, "precious-delta");
    const before = precious(folder);
    await refused(["delta", "merge", "--model", model, "--delta", join(theta2, "ctsft-delta"), "--out", folder], /out .*ctsft did not write/);
    assert.deepEqual(snapshot(folder), before);
  });

  const adaptConfig = (out: string, patch: Record<string, unknown> = {}, at: Record<string, Record<string, string>> = files) => {
    const body = {
      model,
      proxy: { name: "src", train: { path: at.src?.train }, valid: { path: at.src?.valid }, test: { path: at.src?.test } },
      targets: [{ name: "easy", train: { path: at.easy?.train }, test: { path: at.easy?.test } }],
      competence: { epochs: 1, lr: 1e-3, batchSize: 12 },
      scorer: "attribution",
      discovery: { perClass: 3 },
      circuit: { topK: 1 },
      preservation: false,
      methods: ["full"],
      seeds: [0],
      training: { epochs: 1, batchSize: 12 },
      out,
      ...patch,
    };
    const file = join(dir, `adapt-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(body));
    return file;
  };

  it("adapt refuses an out that is a file, or someone's folder, with a typed error", async () => {
    const file = join(dir, "out-file");
    writeFileSync(file, "not a folder");
    await refused(["adapt", "--config", adaptConfig(file)], /out .*out-file.* not a directory/);
    assert.equal(readFileSync(file, "utf8"), "not a folder");
    const folder = join(dir, "precious-adapt");
    const before = precious(folder);
    await refused(["adapt", "--config", adaptConfig(folder)], /out .*precious-adapt.*did not write/);
    assert.deepEqual(snapshot(folder), before);
  });

  it("adapt checks every dataset and language of its config before any work", async () => {
    const out = join(dir, "adapt-bad");
    await refused(["adapt", "--config", adaptConfig(out, { proxy: { name: "src", train: { path: files.src?.train }, valid: { path: join(dir, "missing.csv") }, test: { path: files.src?.test } } })], /proxy\.valid: /);
    const nx = (lang: string, split: string) => ({ nusax: { lang, split, dir: data } });
    await refused(["adapt", "--config", adaptConfig(out, { targets: [{ name: "t", train: nx("easy", "train"), test: nx("klingon", "test") }] })], /targets\.0\.test: .*klingon/);
    assert.ok(!existsSync(join(out, "theta1")), "nothing was trained");
  });

  it("adapt runs into a folder holding only its inputs (as the demo does), re-runs there, and leaves a file someone added", async () => {
    const out = join(dir, "adapt-run");
    const inside: Record<string, Record<string, string>> = {};
    for (const [lang, splits] of Object.entries(files)) {
      mkdirSync(join(out, "data", lang), { recursive: true });
      for (const [split, file] of Object.entries(splits)) {
        const copy = join(out, "data", lang, `${split}.csv`);
        writeFileSync(copy, readFileSync(file));
        (inside[lang] ??= {})[split] = copy;
      }
    }
    const config = adaptConfig(out, {}, inside);
    await run(process.execPath, [BIN, "adapt", "--config", config, "--json"], { timeout: 240_000 });
    const marker = JSON.parse(readFileSync(join(out, "ctsft-artifact.json"), "utf8"));
    assert.equal(marker.kind, "adapt");
    assert.ok(marker.files.includes("theta1") && marker.files.includes("results.json"), JSON.stringify(marker));
    writeFileSync(join(out, "notes.txt"), "my notes");
    await run(process.execPath, [BIN, "adapt", "--config", config, "--json"], { timeout: 240_000 });
    assert.equal(readFileSync(join(out, "notes.txt"), "utf8"), "my notes");
    assert.ok(existsSync(join(out, "theta1", "model.safetensors")) && existsSync(join(out, "report.md")));
    assert.ok(existsSync(join(out, "data", "src", "train.csv")), "the inputs are left alone");
  });
});
