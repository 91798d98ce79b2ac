// The README's main command, exactly as a new user types it after `npm ci`: `npx ctsft demo`
// (the whole pipeline on the embedded synthetic default: no GPU, no hub). It once stopped
// in cdt scoring on every fresh clone while every other test passed; this keeps it running.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const ROOT = new URL("../../..", import.meta.url).pathname;
const run = promisify(execFile);

describe("npx ctsft demo", () => {
  it("runs to the end and writes its report", { timeout: 1_500_000 }, async () => {
    const { stdout, stderr } = await run("npx", ["ctsft", "demo"], { cwd: ROOT, timeout: 1_500_000, maxBuffer: 64 << 20 });
    const md = /report: (\S+report\.md)/.exec(stdout)?.[1];
    assert.ok(md && existsSync(md), `no report in the output:\n${stdout}\n${stderr}`);
    const out = dirname(md);
    for (const f of ["report.html", "heatmap.png", "results.json"]) assert.ok(existsSync(join(out, f)), f);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.ok(Array.isArray(results.methods) && results.methods.length >= 12, "6 methods × 2 targets");
    assert.match(stderr, /faithfulness: Spearman/);
    assert.doesNotMatch(stderr, /cdt is unstable/);
  });
});
