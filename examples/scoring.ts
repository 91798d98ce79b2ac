// Head relevance only: score every attention head of a model with three scorers and compare
// their rankings — the step to look at before trusting a circuit.
//
//   npx tsx examples/scoring.ts --model DIR --data FILE [--per-class N] [WORK_DIR]
//   npx tsx examples/scoring.ts [WORK_DIR]       (no model: builds and trains a tiny one, 15–35 s)
//
// The model should already do the task (θ1, e.g. a checkpoint saved by `ctsft train`); the
// data is the discovery set in the proxy language (CSV/TSV/JSONL with text and label).
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type DataRef, type ModelHandle, rankHeads, Runtime, type ScoreMethod, type Tensor } from "../src/index.ts";

const { values, positionals } = parseArgs({
  options: { model: { type: "string" }, data: { type: "string" }, "per-class": { type: "string" } },
  allowPositionals: true,
});
if ((values.model === undefined) !== (values.data === undefined)) {
  console.error("give both --model DIR and --data FILE, or neither (for the built-in tiny setup)");
  process.exit(2);
}
const work = resolve(positionals[0] ?? mkdtempSync(join(tmpdir(), "ctsft-scoring-")));
mkdirSync(work, { recursive: true });

await using rt = await Runtime.start();

// The discovery set must hold every class in roughly equal numbers: the mean baseline μ is a
// mean of per-class means, and a class seen a handful of times would make it noise. A seeded
// `perClass` subsample makes any labeled file balanced.
let model: ModelHandle;
let discovery: DataRef;
if (values.model !== undefined && values.data !== undefined) {
  model = await rt.models.load({ source: resolve(values.model) });
  discovery = { path: resolve(values.data), perClass: Number(values["per-class"] ?? 24) };
} else {
  ({ model, discovery } = await tinyTrainedModel(rt, work));
}
console.log(`model: ${model.info.family}, ${model.info.layers} layers × ${model.info.heads} heads (${model.info.layers * model.info.heads} heads to score)`);

// μ once, shared by all three scorers: they then differ only in how they measure relevance.
const baseline = (await rt.scoring.baseline({ model, data: discovery }).finalResult()).body;
console.log(`baseline: μ over ${baseline.n} examples, ${JSON.stringify(baseline.classCounts)}`);

// ablation:    exact effect on the gold-class margin of setting a head's output to μ (one forward per head);
// attribution: first-order estimate of the same, one backward pass for all heads (its sign can flip);
// cdt:         contextual decomposition of the head's deviation from μ through the later layers.
const methods: ScoreMethod[] = ["ablation", "attribution", "cdt"];
const top: Record<string, string[]> = {};
for (const method of methods) {
  const { body, tensors } = await rt.scoring.score({ model, data: discovery, method, baseline: baseline.handle, out: join(work, `scores-${method}.json`) }).finalResult();
  // `scores` also arrives as a float32 tensor [layers, heads]; rankHeads takes either form.
  const t = tensors.scores;
  const ranked = rankHeads(t?.dtype === "float32" ? (t as Tensor<"float32">) : body.scores);
  top[method] = ranked.map((h) => `L${h.layer}H${h.head}`);
  console.log(`\n${method} (${body.seconds.toFixed(2)} s) → ${body.path}`);
  for (const h of ranked.slice(0, 5)) console.log(`  L${h.layer}H${h.head}  ${h.score >= 0 ? " " : ""}${h.score.toFixed(4)}`);
}

// Scorers often disagree on small models (docs/method.md reports a near-zero rank
// correlation between cdt and ablation on a 4×4 model), so look at the overlap before
// choosing the scorer a circuit comes from.
const k = Math.min(3, model.info.layers * model.info.heads);
const overlap = (a: string, b: string) => (top[a] ?? []).slice(0, k).filter((h) => (top[b] ?? []).slice(0, k).includes(h)).length;
console.log(`\ntop-${k} overlap: cdt∩ablation ${overlap("cdt", "ablation")}/${k}, attribution∩ablation ${overlap("attribution", "ablation")}/${k}, cdt∩attribution ${overlap("cdt", "attribution")}/${k}`);
console.log(`next: npx ctsft circuit --scores ${join(work, "scores-cdt.json")} --top-k ${k} --out ${join(work, "circuit.json")}`);
console.log("scoring: ok");

/** The synthetic source language and a tiny Llama trained on it for a few epochs. */
async function tinyTrainedModel(rt: Runtime, dir: string): Promise<{ model: ModelHandle; discovery: DataRef }> {
  const { files } = await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0 }, nTrain: 180, nValid: 48, nTest: 48 });
  const src = files.src ?? {};
  const created = await rt.models.create({ family: "llama", layers: 2, heads: 4, dModel: 32, vocab: 500, corpus: [src.train as string], out: join(dir, "model"), overwrite: true });
  const model = await rt.models.load({ source: created.path });
  const trained = (await rt.train({ model, data: { path: src.train as string }, valid: { path: src.valid as string }, epochs: 4, lr: 3e-3 }).finalResult()).body;
  console.log(`tiny setup: trained on the synthetic source, valid accuracy ${((trained.valid?.accuracy ?? 0) * 100).toFixed(1)}%`);
  return { model, discovery: { path: src.valid as string } };
}
