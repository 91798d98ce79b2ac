// A pair-input task (NLI) through the SDK on the real IndoNLI and AmericasNLI files: a
// template with named slots, field → column mapping, label maps across spellings, and the
// typed errors that name the field. The files are read where they lie (CTSFT_INDONLI_DIR,
// CTSFT_AMERICASNLI_DIR, set by .ci/run); a tiny model is built from scratch on their text.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BadRequestError, type ModelHandle, Runtime } from "../../../src/index.ts";

const INDONLI = process.env.CTSFT_INDONLI_DIR;
const AMERICASNLI = process.env.CTSFT_AMERICASNLI_DIR;
const TEMPLATE = "{premise}\nQuestion: {hypothesis}\nAnswer:";
const PAIR = { premise: "premise", hypothesis: "hypothesis" };
const ENC = { e: "entailment", n: "neutral", c: "contradiction" };
const LABELS = ["contradiction", "entailment", "neutral"];
const MAX = 96;

/** The first `n` IndoNLI rows of a split as premise/hypothesis records. */
function records(split: string, n: number): { premise: string; hypothesis: string }[] {
  const lines = readFileSync(join(INDONLI as string, `${split}.jsonl`), "utf8").split("\n").slice(0, n);
  return lines.map((l) => {
    const { premise, hypothesis } = JSON.parse(l) as { premise: string; hypothesis: string };
    return { premise, hypothesis };
  });
}

/** `fn` rejects with a BadRequestError on wire path `path` whose message matches every pattern. */
async function refused(fn: () => Promise<unknown>, path: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof BadRequestError, `expected BadRequestError, got ${String(e)}`);
    assert.equal(e.path, path, e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe("pair-input tasks (NLI) through the SDK", { skip: INDONLI && AMERICASNLI ? false : "CTSFT_INDONLI_DIR / CTSFT_AMERICASNLI_DIR are not set (.ci/run sets them)" }, () => {
  let rt: Runtime;
  let dir: string;
  let model: ModelHandle;
  const indonli = (split: string) => join(INDONLI as string, `${split}.jsonl`);
  const aym = () => join(AMERICASNLI as string, "aym", "dev.tsv");
  const proxyTrain = () => ({ path: indonli("train"), fields: PAIR, labelMap: ENC, limit: 150 });
  const proxyValid = () => ({ path: indonli("valid"), labelMap: ENC, limit: 60 }); // fields: the model's task's

  before(async () => {
    rt = await Runtime.start();
    dir = mkdtempSync(join(tmpdir(), "ctsft-nli-"));
    const created = await rt.models.create({ family: "llama", layers: 2, heads: 4, dModel: 32, vocab: 800, corpus: [indonli("valid"), aym()], fields: PAIR, out: join(dir, "base") });
    model = await rt.models.load({ source: created.path });
  });
  after(async () => {
    await rt?.close();
  });

  it("trains, evaluates, scores and predicts IndoNLI pairs; AmericasNLI's spelling aligns with IndoNLI's through the label map", async () => {
    const { body } = await rt.train({ model, data: proxyTrain(), template: TEMPLATE, epochs: 1, lr: 3e-3, maxLength: MAX }).finalResult();
    assert.ok(Number.isFinite(body.trainLoss) && body.steps > 0);
    assert.deepEqual(body.model.task, { template: TEMPLATE, verbalizer: null, labels: LABELS, fields: PAIR });

    // No template or fields given: the model's task supplies both. IndoNLI spells e/n/c, AmericasNLI the full names.
    const ev = (await rt.evaluate({ model, data: [proxyValid(), { path: aym(), limit: 60 }], predictions: true, maxLength: MAX }).finalResult()).body.results;
    assert.deepEqual(
      ev.map((r) => [r.n, r.labels]),
      [
        [60, LABELS],
        [60, LABELS],
      ],
    );
    for (const r of ev) assert.ok(r.accuracy >= 0 && r.accuracy <= 1);

    // The same rows given as records to predict: the same prompts, so the same logits.
    const pred = await model.predict(records("valid", 60), { maxLength: MAX });
    assert.deepEqual(pred.labels, LABELS);
    const fromFile = ev[0]?.predictions ?? [];
    assert.equal(fromFile.length, 60);
    pred.predictions.forEach((p, j) => {
      assert.equal(p.index, fromFile[j]?.pred, `row ${j}`);
      p.logits.forEach((x, c) => assert.ok(Math.abs(x - (fromFile[j]?.logits[c] as number)) < 1e-4, `row ${j} class ${c}`));
    });

    const discovery = { ...proxyValid(), perClass: 4 };
    const base = (await rt.scoring.baseline({ model, data: discovery, maxLength: MAX }).finalResult()).body;
    assert.deepEqual(base.classCounts, { contradiction: 4, entailment: 4, neutral: 4 });
    const scores = (await rt.scoring.score({ model, data: discovery, method: "attribution", faithfulness: false, maxLength: MAX }).finalResult()).body;
    assert.equal(scores.n, 12);
    assert.equal(scores.scores.flat().length, 8);
    assert.ok(scores.scores.flat().every((x) => Number.isFinite(x)));
  });

  it("a saved NLI checkpoint records template and fields in ctsft.json and predicts records without repeating them", async () => {
    const saved = await model.save(join(dir, "nli"));
    const task = JSON.parse(readFileSync(join(saved.path, "ctsft.json"), "utf8"));
    assert.equal(task.template, TEMPLATE);
    assert.deepEqual(task.fields, PAIR);
    const again = await rt.models.load({ source: saved.path });
    const rows = records("test", 3);
    const long = { premise: `${"kata ".repeat(200)}akhir`, hypothesis: "pendek" };
    const [a, b] = await Promise.all([again.predict([...rows, long], { maxLength: 32 }), model.predict([...rows, long], { maxLength: 32 })]);
    assert.deepEqual(
      a.predictions.map((p) => p.logits),
      b.predictions.map((p) => p.logits),
    );
    assert.deepEqual(
      a.predictions.map((p) => p.truncated),
      b.predictions.map((p) => p.truncated),
    );
    assert.equal(a.predictions[3]?.truncated, true, "a 200-word premise is cut to fit 32 tokens");
    const short = await again.predict([{ premise: "Ia makan.", hypothesis: "Ia lapar." }], { maxLength: 32 });
    assert.equal(short.predictions[0]?.truncated, false);
    await again.release();
  });

  it("skip and limit split one AmericasNLI dev file into disjoint target train and validation parts", async () => {
    const train = await rt.data.load({ path: aym(), fields: PAIR, limit: 300 });
    const valid = await rt.data.load({ path: aym(), fields: PAIR, skip: 300 });
    assert.deepEqual([train.info.n, valid.info.n], [300, 443]);
    assert.deepEqual(train.info.fields, ["premise", "hypothesis"]);
    assert.match(valid.info.source, /\[rows 301\.\.743\]$/);
    assert.deepEqual(train.info.labels, LABELS);
  });

  it("typed errors name the field: a template missing a mapped field or with an unfilled slot, a field missing in the data, labels that do not map", async () => {
    await refused(() => rt.train({ model, data: proxyTrain(), template: "{premise}\nAnswer:" }).finalResult(), "body.template", /no \{hypothesis\} slot for field 'hypothesis'/);
    await refused(() => rt.evaluate({ model, data: [proxyValid()], template: "{premise} {question} {hypothesis}" }).finalResult(), "body.template", /slot \{question\} is filled by no field/);
    await refused(() => rt.data.load({ path: aym(), fields: { premise: "premise", hypothesis: "hyp" } }), "body.fields", /field 'hypothesis' maps to column 'hyp'/, /dev\.tsv lacks/);
    await refused(() => rt.data.load({ path: indonli("valid"), fields: PAIR, labelMap: { e: "entailment", n: "neutral" } }), "body.labelMap", /label 'c' in line \d+ of .*valid\.jsonl \(column 'label'\) is not in label_map/);
    // A plain text for a model whose task takes records: the recorded template does not fit.
    await refused(() => model.predict(["sebuah teks"]), "body.template", /recorded template/);
  });
});
