import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { Family } from "../schema/models.ts";
import { need, num, parse } from "./args.ts";

const USAGE = "ctsft new-model --family F --layers L --heads H [--kv-heads K] --d-model D --corpus FILE... --vocab N --out DIR [--seed S] [--overwrite] [--json]";

/** `ctsft new-model`: a real HF checkpoint from scratch, loadable by plain from_pretrained. */
export async function newModel(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      family: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      "kv-heads": { type: "string" },
      "d-model": { type: "string" },
      "d-ff": { type: "string" },
      corpus: { type: "string", multiple: true },
      vocab: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      overwrite: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const family = Family.parse(need(values.family, "--family", USAGE));
  await using rt = await Runtime.start();
  const result = await rt.models.create({
    family,
    layers: num(need(values.layers, "--layers", USAGE), "--layers") as number,
    heads: num(need(values.heads, "--heads", USAGE), "--heads") as number,
    kvHeads: num(values["kv-heads"], "--kv-heads"),
    dModel: num(need(values["d-model"], "--d-model", USAGE), "--d-model") as number,
    dFf: num(values["d-ff"], "--d-ff"),
    corpus: (values.corpus ?? []).map((p) => resolve(p)),
    vocab: num(values.vocab, "--vocab", 2000),
    out: resolve(need(values.out, "--out", USAGE)),
    seed: num(values.seed, "--seed", 0),
    overwrite: values.overwrite,
  });
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `wrote ${result.family} checkpoint (${result.params} parameters) to ${result.path}\n`);
  return 0;
}
