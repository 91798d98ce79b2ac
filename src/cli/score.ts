import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { rankHeads, scoreDiagnostics } from "../api/scoring.ts";
import { ScoreMethod } from "../schema/scoring.ts";
import { dataArg, need, num, parse } from "./args.ts";
import { ProgressBar } from "./progress.ts";

const USAGE =
  "ctsft score --model DIR --data FILE|nusax:LANG:SPLIT [--per-class N] [--method cdt|ablation|attribution|cdt-unsigned] [--faithfulness N|off] --out scores.json [--json]";

/** `ctsft score`: relevance of every attention head on a discovery set. */
export async function score(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      "per-class": { type: "string" },
      method: { type: "string", default: "cdt" },
      "batch-size": { type: "string" },
      faithfulness: { type: "string" },
      out: { type: "string" },
      device: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const method = ScoreMethod.parse(values.method);
  const data = { ...dataArg(need(values.data, "--data", USAGE)), perClass: num(values["per-class"], "--per-class") };
  await using rt = await Runtime.start({ device: values.device ?? "auto" });
  const model = await rt.models.load({ source: resolve(need(values.model, "--model", USAGE)) });
  const faithfulness = values.faithfulness === "off" ? false : values.faithfulness === undefined ? true : { examples: num(values.faithfulness, "--faithfulness") as number };
  const stream = rt.scoring.score({ model, data, method, faithfulness, out: resolve(need(values.out, "--out", USAGE)), batchSize: num(values["batch-size"], "--batch-size", 32) });
  const bars = { baseline: new ProgressBar("baseline"), scoring: new ProgressBar(method), faithfulness: new ProgressBar("faithfulness (ablation)") };
  for await (const e of stream) bars[e.phase].update(e.done, e.total);
  const { body } = await stream.result;
  bars.scoring.done(`scored ${body.model.layers * body.model.heads} heads on ${body.n} examples in ${body.seconds.toFixed(1)} s → ${body.path}`);
  for (const line of scoreDiagnostics(body)) process.stderr.write(`${line}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(body)}\n`);
  } else {
    for (const h of rankHeads(body.scores).slice(0, 10)) process.stdout.write(`L${h.layer}H${h.head}\t${h.score.toFixed(4)}\n`);
  }
  return 0;
}
