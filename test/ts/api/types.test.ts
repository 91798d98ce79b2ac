// Types that catch mistakes at compile time. `npm test` typechecks this file (tsc --noEmit):
// each `@ts-expect-error` line must be an error, or the typecheck fails.
import assert from "node:assert/strict";
import { it } from "node:test";
import { handleId, type HandleLike, type Runtime } from "../../../src/index.ts";

it("a plain string (a checkpoint path) is not a loaded model's handle", () => {
  const ids: HandleLike[] = [handleId("m1")];
  // @ts-expect-error a path where a loaded model is expected
  ids.push("models/theta1");
  const misuse = (rt: Runtime) => {
    // @ts-expect-error train takes a ModelHandle (or its id), not a checkpoint directory
    void rt.train({ model: "models/theta1", data: { path: "train.csv" } });
  };
  assert.equal(typeof misuse, "function"); // compiled, never run
  assert.equal(ids[0], "m1"); // at run time the id is the plain string
});
