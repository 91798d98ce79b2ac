// `ctsft adapt --config`: a NusaX language no code names (Balinese) as the target works from
// a config alone; bad configs are refused with the offending field named.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

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
      [{ ...base, targets: [{ name: "x", test: { path: "e.csv" } }] }, /targets\.0\.train/],
    ];
    for (const [body, message] of cases) {
      await assert.rejects(run(process.execPath, [BIN, "adapt", "--config", writeConfig(dir, body)]), (e: { code?: number; stderr?: string }) => e.code === 1 && message.test(e.stderr ?? ""), String(message));
    }
  });

  it("adapts to a NusaX language the code never names (ban), from the config alone", { skip: process.env.CTSFT_NUSAX_DIR ? false : "CTSFT_NUSAX_DIR is not set (.ci/run sets it)", timeout: 300_000 }, async () => {
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
    const { stdout } = await run(process.execPath, [BIN, "adapt", "--config", file, "--json"], { timeout: 280_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1) as string);
    assert.deepEqual(result.methods.map((m: { name: string; target: string }) => `${m.target}/${m.name}`), ["ban/full", "ban/ctsft"]);
    const ctsft = result.methods[1];
    assert.equal(ctsft.seeds, 2);
    assert.ok(ctsft.params_fraction > 0 && ctsft.params_fraction < 0.5);
    assert.ok(typeof ctsft.forgetting_vs_full === "number");
    assert.match(result.verdicts[0].text, /^ban: /);
    for (const f of ["report.md", "report.html", "heatmap.png", "results.json", "circuit.json"]) assert.ok(existsSync(join(dir, "run", f)), f);
  });
});
