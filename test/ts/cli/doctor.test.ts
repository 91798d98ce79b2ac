import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;

describe("ctsft doctor --json", () => {
  it("prints one JSON object describing the runtime and both local modes", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, "doctor", "--json"], { timeout: 120_000 });
    const lines = stdout.trim().split("\n");
    const report = JSON.parse(lines[lines.length - 1] as string);
    assert.equal(report.protocol, 1);
    assert.match(report.runtime.python, /^3\./);
    assert.match(report.runtime.torch, /^2\.13\.0/);
    assert.match(report.runtime.transformers, /^\d+\./);
    assert.equal(typeof report.runtime.cuda, "boolean");
    assert.equal(report.modes.process.ok, true);
    assert.equal(typeof report.modes.embedded.ok, "boolean");
    if (!report.modes.embedded.ok) assert.ok(report.modes.embedded.error.length > 0);
  });

  it("rejects an unknown command with usage", async () => {
    await assert.rejects(promisify(execFile)(process.execPath, [BIN, "frobnicate"]), (e: { code?: number; stderr?: string }) => e.code === 2 && /usage: ctsft/.test(e.stderr ?? ""));
  });
});
