import { resolve } from "node:path";
import { Runtime } from "../api/runtime.ts";
import { CircuitStrategy } from "../schema/scoring.ts";
import { need, num, parse } from "./args.ts";

const USAGE = "ctsft circuit --scores scores.json (--top-k K | --budget F | --threshold T | --heads L:H,...) [--strategy circuit|low|random|explicit] [--seed S] --out circuit.json [--json]";

/** `ctsft circuit`: select heads from a scores file into a circuit artifact. */
export async function circuit(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      scores: { type: "string" },
      "top-k": { type: "string" },
      budget: { type: "string" },
      threshold: { type: "string" },
      heads: { type: "string" },
      strategy: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  const heads = values.heads?.split(",").map((lh) => lh.split(":").map(Number) as [number, number]);
  const strategy = CircuitStrategy.parse(values.strategy ?? (heads ? "explicit" : "circuit"));
  await using rt = await Runtime.start({ device: "cpu" });
  const c = await rt.circuits.select({
    scores: resolve(need(values.scores, "--scores", USAGE)),
    strategy,
    topK: num(values["top-k"], "--top-k"),
    budget: num(values.budget, "--budget"),
    threshold: num(values.threshold, "--threshold"),
    heads,
    seed: num(values.seed, "--seed", 0),
    out: resolve(need(values.out, "--out", USAGE)),
  });
  const summary = `${c.heads.length} heads (${c.heads.map(([l, h]) => `L${l}H${h}`).join(" ")}) + all norms = ${(c.params.fraction * 100).toFixed(3)}% of parameters → ${c.path}`;
  process.stdout.write(values.json ? `${JSON.stringify(c)}\n` : `${summary}\n`);
  return 0;
}
