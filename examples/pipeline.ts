// The CT-SFT pipeline through the SDK, one call per step, on the built-in synthetic task:
//
//   data → θ0 (a tiny Llama built from scratch) → competence tuning on the source (θ1)
//   → head scores (cdt) → circuit (top-k) → CT-SFT on a target language (θ2)
//   → evaluation on target and source → θ2 checkpoint + sparse delta.
//
//   npx tsx examples/pipeline.ts [WORK_DIR]     (20–40 s on 2 CPU cores; more if they are busy)
//
// Everything is written under WORK_DIR (default: a fresh temp dir). In your own code,
// import from "ctsft" instead of "../src/index.ts".
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type DataRef, rankHeads, Runtime } from "../src/index.ts";

const work = resolve(process.argv[2] ?? mkdtempSync(join(tmpdir(), "ctsft-pipeline-")));
mkdirSync(work, { recursive: true });
const pct = (x: number | undefined) => `${((x ?? Number.NaN) * 100).toFixed(1)}%`;

// `await using` closes the runtime (and its Python process) however this script ends.
await using rt = await Runtime.start();
const info = await rt.info();
console.log(`runtime: python ${info.python}, torch ${info.torch}, transformers ${info.transformers}, device ${info.device}`);

// 1. Data. The synthetic task is parallel across languages: row i is the same sentence with
// the same label in every language, so target and source accuracy are directly comparable.
// "hard" sits far from the source (distance 0.7: most words and some word order changed),
// which is where the proxy's competence does not carry over by itself.
const { files } = await rt.data.synthetic({ out: join(work, "data"), languages: { src: 0, hard: 0.7 }, nTrain: 240, nValid: 48, nTest: 150, seed: 0 });
const file = (lang: string, split: string): DataRef => {
  const path = files[lang]?.[split];
  if (path === undefined) throw new Error(`the synthetic task has no ${lang}/${split}`);
  return { path };
};

// 2. θ0: a real HF checkpoint from scratch. Its BPE tokenizer is trained on every
// language's training text, so the target's words are not all unknown pieces.
const created = await rt.models.create({
  family: "llama",
  layers: 2,
  heads: 4,
  kvHeads: 2, // GQA, as in most current models: K/V rows are shared by 2 query heads
  dModel: 48,
  vocab: 800,
  corpus: Object.values(files).map((splits) => splits.train as string),
  out: join(work, "theta0"),
  overwrite: true,
});
console.log(`θ0: ${created.family} ${created.layers}×${created.heads} heads (${created.kvHeads} KV), ${created.params} parameters`);
const model = await rt.models.load({ source: created.path });

// 3. Competence tuning θ0 → θ1: ordinary full SFT on the source (proxy) language. A circuit
// only exists once the model can do the task, so this comes before any scoring.
const competence = rt.train({ model, data: file("src", "train"), valid: file("src", "valid"), epochs: 4, lr: 3e-3, batchSize: 16 });
for await (const ev of competence) {
  // Events are a discriminated union: narrowing on `type` types the rest of the fields.
  if (ev.type === "start") console.log(`competence: ${ev.totalSteps} steps over ${ev.examples} examples`);
  else if (ev.type === "step" && ev.step % 10 === 0) console.log(`  step ${ev.step}/${ev.totalSteps}  loss ${ev.loss.toFixed(3)}  ${ev.examplesPerS.toFixed(0)} ex/s`);
  else if (ev.type === "epoch") console.log(`  epoch ${ev.epoch}: train loss ${ev.trainLoss.toFixed(3)}, source valid ${pct(ev.valid?.accuracy)}`);
}
const trained = (await competence.result).body;
console.log(`θ1: ${trained.steps} steps in ${trained.seconds.toFixed(1)} s, source valid accuracy ${pct(trained.valid?.accuracy)}`);
const theta1 = (await model.save(join(work, "theta1"))).path;

// 4. Relevance of every head on a label-balanced discovery set in the source language.
// cdt scores how much of the correct-class margin each head's deviation from the mean
// baseline carries; the scores file records the model's fingerprint for later checks.
const scoresFile = join(work, "scores-cdt.json");
const scoring = rt.scoring.score({ model, data: { ...file("src", "valid"), perClass: 16 }, method: "cdt", out: scoresFile });
for await (const ev of scoring) if (ev.done === ev.total) console.log(`scoring: ${ev.phase} done (${ev.total})`);
const scores = (await scoring.result).body;
console.log("top heads (cdt):", rankHeads(scores.scores).slice(0, 4).map((h) => `L${h.layer}H${h.head} ${h.score.toFixed(3)}`).join(", "));

// 5. The circuit: the k most relevant heads. The file is what `train --method ctsft` takes.
const circuit = await rt.circuits.select({ scores: scoresFile, topK: 2, out: join(work, "circuit.json") });
console.log(`circuit: ${circuit.heads.map(([l, h]) => `L${l}H${h}`).join(" ")} + all norms = ${(circuit.params.fraction * 100).toFixed(2)}% of parameters`);

// 6. Before CT-SFT: θ1 on the target and the source, to measure gain and forgetting against.
const evaluateBoth = async () => {
  const { body } = await rt.evaluate({ model, data: [file("hard", "test"), file("src", "test")] }).finalResult();
  return { target: body.results[0]?.accuracy, source: body.results[1]?.accuracy };
};
const before = await evaluateBoth();

// 7. θ1 → θ2: CT-SFT on 100 target examples. Only the circuit's head slices (Q rows, O
// columns, their K/V rows) and the norms receive updates; every other element stays
// bit-identical to θ1, which is what keeps the source language from being forgotten.
const ctsft = await rt.train({ model, method: "ctsft", circuit: circuit.path as string, data: { ...file("hard", "train"), limit: 100 }, epochs: 4, lr: 5e-3, seed: 0 }).finalResult();
console.log(`ctsft: trained ${ctsft.body.paramsTrainable} of ${ctsft.body.paramsTotal} parameters (${pct(ctsft.body.paramsFraction)}) in ${ctsft.body.seconds.toFixed(1)} s`);
const after = await evaluateBoth();

// 8. Save θ2: a plain HF checkpoint, with the sparse delta (θ2 − θ1 on the trained slices)
// beside it, so θ1 can be recovered bit-exactly or the delta shipped on its own.
const saved = await model.save(join(work, "theta2"));
await model.release();

console.log("\nsummary");
console.log(`  target (hard) accuracy  θ1 ${pct(before.target)} → θ2 ${pct(after.target)}`);
console.log(`  source (src)  accuracy  θ1 ${pct(before.source)} → θ2 ${pct(after.source)}`);
console.log(`  θ1 checkpoint  ${theta1}`);
console.log(`  θ2 checkpoint  ${saved.path}`);
console.log(`  sparse delta   ${saved.delta}`);
console.log("pipeline: ok");
