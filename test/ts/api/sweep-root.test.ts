// The Ray executor's root check, before any work: what lies under the root passes (a folder
// whose name begins with two dots included), what lies outside is refused naming the field.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BadRequestError } from "../../../src/errors.ts";
import { checkInsideRoot } from "../../../src/api/sweep.ts";
import { Executor } from "../../../src/schema/sweep.ts";

const ray = Executor.parse({ kind: "ray", root: "/data/run" });

describe("checkInsideRoot", () => {
  it("accepts the root and what lies under it, `..cache` and relative paths included", () => {
    checkInsideRoot(ray, ["/data/run", "/data/run/..cache/x.csv", "/data/run/a/../b.csv", "rel/x.csv", undefined]);
  });

  it("refuses the parent, a sibling and a path that climbs out", () => {
    for (const p of ["/data", "/data/runs/x.csv", "/data/run/../other/x.csv", "/etc/passwd"]) {
      assert.throws(
        () => checkInsideRoot(ray, [p]),
        (e: unknown) => e instanceof BadRequestError && e.path === "executor.root" && e.message.startsWith(`${p} lies outside`),
        p,
      );
    }
  });

  it("checks nothing for the serial executor", () => {
    checkInsideRoot(Executor.parse({ kind: "serial" }), ["/etc/passwd"]);
  });
});
