// `ctsft ray ARGS…` hands Ray's CLI its arguments unchanged: an option after Ray's command
// (`--help`, `--`) is Ray's, not ctsft's.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const run = promisify(execFile);

describe("ctsft ray", () => {
  it("passes --help after Ray's command to Ray, and -- with what follows", { timeout: 120_000 }, async () => {
    const { stdout } = await run(process.execPath, [BIN, "ray", "start", "--help"], { timeout: 110_000 });
    assert.match(stdout, /Start Ray processes manually/, "Ray's help for `ray start`");
    assert.doesNotMatch(stdout, /Circuit-Targeted/, "not ctsft's help");
    // `ray stop -- -h`: click reads what follows `--` as arguments, and `ray stop` takes none.
    const err = await run(process.execPath, [BIN, "ray", "stop", "--", "-h"], { timeout: 110_000 }).then(
      () => assert.fail("ray stop accepted an extra argument"),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2, err.stderr);
    assert.match(err.stderr, /unexpected extra argument \(-h\)/i);
  });
});
