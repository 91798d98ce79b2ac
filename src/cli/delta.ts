import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { BadRequestError } from "../errors.ts";
import { need, parse } from "./args.ts";

const USAGE = "ctsft delta apply|revert|merge --model DIR --delta DIR --out DIR [--overwrite] [--json]";

/**
 * `ctsft delta`: a CT-SFT sparse delta on checkpoints.
 * - `apply`:  θ1 checkpoint + delta → θ2 checkpoint, with the delta kept beside it (revertible);
 * - `merge`:  the same, exported as a plain HF checkpoint only (no delta beside it);
 * - `revert`: θ2 checkpoint + delta → θ1 checkpoint, bit-exact.
 * `--out` must be absent, empty or a checkpoint ctsft wrote, unless `--overwrite`.
 */
export async function delta(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action !== "apply" && action !== "revert" && action !== "merge") throw new BadRequestError(`usage: ${USAGE}`);
  const { values } = parse(rest, { model: { type: "string" }, delta: { type: "string" }, out: { type: "string" }, overwrite: { type: "boolean", default: false }, json: { type: "boolean", default: false } }, USAGE);
  const deltaPath = resolve(need(values.delta, "--delta", USAGE));
  const out = resolve(need(values.out, "--out", USAGE));
  await using rt = await Runtime.start({ device: "cpu" });
  const model = await rt.models.load({ source: resolve(need(values.model, "--model", USAGE)) });
  const overwrite = values.overwrite === true;
  await model.save(out, { overwrite, dryRun: true }); // refuse a bad --out before touching the model
  // A merge is an export: the delta is not kept with the model, so only the plain checkpoint is written.
  const done = action === "revert" ? await model.revertDelta(deltaPath) : await model.applyDelta(deltaPath, { keep: action === "apply" });
  const saved = await model.save(out, { overwrite });
  const summary = { action, out: saved.path, delta: saved.delta, entries: done.entries, params: done.params };
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${action}: ${done.params} parameters in ${done.entries} slices → ${saved.path}\n`);
  return 0;
}
