import { resolve } from "node:path";
import type { ModelHandle } from "../api/models.ts";
import type { Runtime } from "../api/runtime.ts";

/** The name `--delta DIR` is loaded under (one delta per command line). */
const DELTA_NAME = "delta";

/** `--model DIR [--delta DIR]` of `predict` and `generate`: the base model loaded from its
 * checkpoint, and the delta (a `ctsft-delta` folder or a checkpoint keeping one) loaded by name
 * beside it. `delta` is what to pass as the ops' `delta` option. */
export async function loadAdapted(rt: Runtime, flags: { model: string; delta?: string }): Promise<{ model: ModelHandle; delta: string | undefined }> {
  const model = await rt.models.load({ source: resolve(flags.model) });
  if (flags.delta === undefined) return { model, delta: undefined };
  await model.deltas.load(DELTA_NAME, resolve(flags.delta));
  return { model, delta: DELTA_NAME };
}
